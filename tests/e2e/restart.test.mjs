// What a room stored survives a restart of wrangler dev (its local persistence directory).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { useServer } from './harness.mjs';
import { connect } from './stomp.mjs';

const server = useServer();

test('history and queued messages survive a restart, and message ids keep increasing', async () => {
  const url = () => `${server.wsUrl}/rooms/durable-${process.pid}`;
  const writer = await connect(url());
  for (let n = 1; n <= 3; n++) await writer.publishConfirmed('/topic/log', `before restart ${n}`);
  await writer.publishConfirmed('/queue/later', 'waiting for a consumer');
  await writer.disconnect();

  await server.restart();

  const reader = await connect(url());
  const history = reader.subscribe('/topic/log', { 'replay-last': '10' });
  const queued = reader.subscribe('/queue/later');
  const replayed = await history.atLeast(3);
  assert.deepEqual(replayed.map((m) => m.body), ['before restart 1', 'before restart 2', 'before restart 3']);
  assert.ok(replayed.every((m) => m.headers.replayed === 'true'));
  const [waiting] = await queued.atLeast(1);
  assert.equal(waiting.body, 'waiting for a consumer');

  await reader.publishConfirmed('/topic/log', 'after restart');
  const [, , , live] = await history.atLeast(4);
  assert.equal(live.body, 'after restart');
  assert.ok(Number(live.headers['message-id']) > Number(replayed[2].headers['message-id']));
  assert.ok(Number(live.headers['message-id']) > Number(waiting.headers['message-id']));
  await reader.disconnect();
});
