// The room's promises across real evictions: workerd evicts an idle Durable Object after 10 s
// without events (its hibernatable sockets stay open), and the stats endpoint's `wakes` counter
// shows each rebuild. The cases run side by side, each in its own room, so the file takes
// about as long as its longest case.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { useServer } from './harness.mjs';
import { TestSocket } from './sockets.mjs';
import { connect, sleep } from './stomp.mjs';

/** Longer than workerd's 10 s inactivity timeout, so an idle room is evicted by then. */
const EVICTION_MS = 12_000;
const HISTORY_LIMIT = 10;
const CONNECT_TIMEOUT_MS = 16_000;

const server = useServer({
  vars: {
    ROOM_SETTINGS: JSON.stringify({ history_limit: HISTORY_LIMIT, connect_timeout_ms: CONNECT_TIMEOUT_MS }),
  },
});

async function stats(room) {
  const response = await fetch(`${server.httpUrl}/rooms/${room}/stats`);
  assert.equal(response.status, 200);
  return response.json();
}

/** Waits until the idle room has been evicted, and proves it: the next stats call rebuilds it. */
async function evicted(room, wakesBefore) {
  await sleep(EVICTION_MS);
  const after = await stats(room);
  assert.equal(after.wakes, wakesBefore + 1, 'the room was evicted and woken again');
  return after;
}

describe('across evictions', { concurrency: true }, () => {
  test('a socket that never sends CONNECT is closed on time, though the room was evicted and woken meanwhile', async () => {
    const room = `connect-timeout-${process.pid}`;
    const before = await stats(room);
    const opened = Date.now();
    const socket = await TestSocket.open(`${server.wsUrl}/rooms/${room}`, ['v12.stomp']);
    await evicted(room, before.wakes);
    const error = await socket.nth(0, CONNECT_TIMEOUT_MS);
    const after = Date.now() - opened;
    assert.match(error, /^ERROR\nmessage:CONNECT timeout\n/);
    assert.ok(after >= CONNECT_TIMEOUT_MS - 500, `not before the timeout: ${after} ms`);
    assert.ok(after < CONNECT_TIMEOUT_MS + 3_000, `the clock did not restart at the wake: ERROR after ${after} ms`);
    const closed = await socket.closed;
    assert.equal(closed.code, 1002);
  });

  test('topic history stays bounded when the room is evicted between bursts', async () => {
    const room = `history-${process.pid}`;
    const client = await connect(`${server.wsUrl}/rooms/${room}`);
    let wakes = (await stats(room)).wakes;
    const bursts = 3;
    for (let burst = 0; burst < bursts; burst++) {
      const receipts = [];
      for (let n = 0; n < 30; n++) receipts.push(client.publishConfirmed('/topic/chat', `${burst}.${n}`));
      await Promise.all(receipts);
      if (burst < bursts - 1) wakes = (await evicted(room, wakes)).wakes;
    }
    const { stored } = await stats(room);
    assert.ok(stored.history <= HISTORY_LIMIT + 31,
      `${stored.history} messages stored; the room keeps ${HISTORY_LIMIT} and trims every 32`);
    const reader = await connect(`${server.wsUrl}/rooms/${room}`);
    const replay = reader.subscribe('/topic/chat', { 'replay-after': '0' });
    const replayed = await replay.atLeast(HISTORY_LIMIT);
    await sleep(500);
    assert.equal(replay.items.length, HISTORY_LIMIT, 'replay gives the last history_limit messages');
    assert.deepEqual(replayed.map((m) => m.body), Array.from({ length: HISTORY_LIMIT }, (_, i) => `2.${20 + i}`));
    await reader.disconnect();
    await client.disconnect();
  });

  test('a subscriber kept across an eviction still receives, and ids keep increasing', async () => {
    const room = `kept-${process.pid}`;
    const listener = await connect(`${server.wsUrl}/rooms/${room}`);
    const inbox = listener.subscribe('/topic/news');
    const writer = await connect(`${server.wsUrl}/rooms/${room}`);
    await writer.publishConfirmed('/topic/news', 'before');
    const [first] = await inbox.atLeast(1);
    await evicted(room, (await stats(room)).wakes);
    await writer.publishConfirmed('/topic/news', 'after');
    const [, second] = await inbox.atLeast(2);
    assert.equal(second.body, 'after');
    assert.ok(Number(second.headers['message-id']) > Number(first.headers['message-id']));
    await listener.disconnect();
    await writer.disconnect();
  });
});

test('a room may be called "stats"', async () => {
  const url = `${server.wsUrl}/rooms/stats`;
  const alice = await connect(url);
  const bob = await connect(url);
  const inbox = bob.subscribe('/topic/chat');
  await alice.publishConfirmed('/topic/chat', 'hello from the room named stats');
  const [message] = await inbox.atLeast(1);
  assert.equal(message.body, 'hello from the room named stats');
  const counters = await stats('stats');
  assert.equal(counters.connections, 2);
  await alice.disconnect();
  await bob.disconnect();
});
