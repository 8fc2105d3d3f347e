// Heart-beats against the real build. Rooms follow what each client asks for, down to 1 s,
// so each case runs in seconds. One server checks liveness rarely, as in production, to show an
// idle room is not woken at all; the other every second, to show a silent client is found.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { useServer } from './harness.mjs';
import { TestSocket } from './sockets.mjs';
import { connect, sleep } from './stomp.mjs';

const server = useServer({
  vars: { ROOM_SETTINGS: JSON.stringify({ liveness_check_ms: 600_000 }) },
});
const watchful = useServer({
  vars: { ROOM_SETTINGS: JSON.stringify({ liveness_check_ms: 1000 }) },
});

async function stats(room) {
  const response = await fetch(`${server.httpUrl}/rooms/${room}/stats`);
  assert.equal(response.status, 200);
  return response.json();
}

test('a client pinging every second stays connected through 5 s of silence, and the room is not woken once', async () => {
  const room = `beats-${process.pid}`;
  const client = await connect(`${server.wsUrl}/rooms/${room}`, { heartbeat: [1000, 1000] });
  assert.equal(client.connectedFrame.headers['heart-beat'], '1000,1000');
  // The room's own bookkeeping after the connect (its id ceiling comes down once it has been
  // quiet for 2 s) is done before the idle spell measured here begins.
  await sleep(2500);
  const before = await stats(room);
  await sleep(5000);
  const after = await stats(room);
  assert.ok(client.connected, 'still connected');
  assert.equal(client.closes.items.length, 0);
  assert.ok(client.pongs.items.length >= 4, `server heart-beats received: ${client.pongs.items.length}`);
  assert.equal(after.wakes, before.wakes, 'the room stayed in memory, so its counters compare');
  assert.deepEqual(after.events_since_wake, before.events_since_wake,
    'pings were answered by the auto-response: no message, alarm or other call woke the room');
  const receipt = await client.disconnect();
  assert.ok(receipt);
});

test('a client that wants server heart-beats but never pings still gets them', async () => {
  const client = await connect(`${server.wsUrl}/rooms/listener-${process.pid}`, { heartbeat: [0, 1000] });
  await sleep(4500);
  assert.ok(client.connected);
  assert.ok(client.pongs.items.length >= 3, `server heart-beats received: ${client.pongs.items.length}`);
  await client.disconnect();
});

test('a client that promised heart-beats and went silent is closed', async () => {
  const socket = await TestSocket.open(`${watchful.wsUrl}/rooms/silent-${process.pid}`, ['v12.stomp']);
  socket.send('CONNECT\naccept-version:1.2\nhost:x\nheart-beat:1000,0\n\n\0');
  assert.match(await socket.nth(0), /^CONNECTED/);
  const closed = await Promise.race([socket.closed, sleep(10_000).then(() => null)]);
  assert.ok(closed, 'closed within 10 s');
  assert.ok(socket.received.some((m) => typeof m === 'string' && /^ERROR\n/.test(m) && /heart-beat timeout/.test(m)),
    `got ${JSON.stringify(socket.received)}`);
});
