// What an operator reads of a running Worker, against the real build: one JSON line per event
// in wrangler's log (a refusal names its reason, its limit and the client's address; a closed
// connection its reason and duration), never a body; and /stats counting refusals by reason,
// behind STOMP_STATS_TOKEN when it is set.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { useServer } from './harness.mjs';
import { request, until } from './http.mjs';
import { TestSocket } from './sockets.mjs';

const MAX_FRAME_BYTES = 4096;
const STATS_TOKEN = `stats-${process.pid}-token`;

const server = useServer({
  vars: {
    ROOM_SETTINGS: JSON.stringify({ limits: { max_frame_bytes: MAX_FRAME_BYTES }, log_level: 'info' }),
    STOMP_STATS_TOKEN: STATS_TOKEN,
  },
});

let roomCounter = 0;
const roomName = (name) => `logs-${name}-${process.pid}-${++roomCounter}`;

/** A raw socket that has sent CONNECT and read CONNECTED. */
async function rawClient(room) {
  const socket = await TestSocket.open(`${server.wsUrl}/rooms/${room}`, ['v12.stomp']);
  socket.send('CONNECT\naccept-version:1.2\nhost:x\n\n\0');
  assert.match(await socket.nth(0), /^CONNECTED\n/);
  return socket;
}

/** The room's JSON lines in wrangler's log so far, parsed: wrangler prints a warning or an
 * error inside its own colours and marker, so each line is read from its first `{` to its last `}`. */
function logLines() {
  return server.log
    .replace(/\u001b\[[0-9;]*m/g, '')
    .split('\n')
    .filter((line) => line.includes('{"') && line.includes('"message":'))
    .map((line) => JSON.parse(line.slice(line.indexOf('{'), line.lastIndexOf('}') + 1)))
    .filter((line) => typeof line.level === 'string');
}

const linesOf = (room, message) => logLines().filter((line) => line.room === room && line.message === message);

test('a frame over max_frame_bytes prints one JSON line naming the refusal, the limit and the address, and none of the body', async () => {
  const room = roomName('frame');
  const socket = await rawClient(room);
  const marker = `body-marker-${process.pid}`;
  socket.send(`SEND\ndestination:/topic/chat\n\n${marker}${'x'.repeat(MAX_FRAME_BYTES)}\0`);
  assert.match(await socket.nth(1), /^ERROR\nmessage:message too large\n/);
  await socket.closed;

  await until(() => linesOf(room, 'connection closed').length === 1, 'the closed line');
  assert.deepEqual(linesOf(room, 'connection opened'), [], 'the opening is a debug line, not printed at info');
  const [refused] = linesOf(room, 'refused');
  assert.equal(refused.level, 'warn');
  assert.equal(refused.reason, 'too_large');
  assert.equal(refused.limit, 'max_frame_bytes');
  assert.equal(typeof refused.address, 'string', 'the client address is named');
  const [closed] = linesOf(room, 'connection closed');
  assert.equal(closed.level, 'info');
  assert.equal(closed.transport, 'websocket');
  assert.equal(closed.verified, false);
  assert.equal(closed.conn, refused.conn);
  assert.equal(closed.address, refused.address);
  assert.deepEqual([closed.reason, closed.refusal], ['refused', 'too_large']);
  assert.ok(Number.isInteger(closed.duration_ms) && closed.duration_ms >= 0);
  assert.ok(!server.log.includes(marker), 'no body in the log');
});

test('a SEND to a destination that does not exist is a destination refusal, and a DISCONNECT closes as one', async () => {
  const room = roomName('destination');
  const bad = await rawClient(room);
  bad.send('SEND\ndestination:/nowhere/at-all\n\nhello\0');
  assert.match(await bad.nth(1), /^ERROR\nmessage:unknown destination\n/);
  const good = await rawClient(room);
  good.send('DISCONNECT\nreceipt:bye\n\n\0');
  await good.closed;
  await until(() => linesOf(room, 'connection closed').length === 2, 'both closed lines');
  const [refused] = linesOf(room, 'refused');
  assert.equal(refused.reason, 'destination');
  assert.equal(refused.limit, undefined);
  assert.deepEqual(linesOf(room, 'connection closed').map((line) => line.reason).sort(), ['disconnect', 'refused']);
  assert.ok(!server.log.includes('/nowhere/at-all'), "the client's destination is not logged");
});

test('/stats counts refusals by reason, and answers only the stats token once STOMP_STATS_TOKEN is set', async () => {
  const room = roomName('stats');
  for (let n = 0; n < 2; n++) {
    const socket = await rawClient(room);
    socket.send(`SEND\ndestination:/topic/chat\n\n${'x'.repeat(MAX_FRAME_BYTES + 1)}\0`);
    await socket.closed;
  }
  const url = `${server.httpUrl}/rooms/${room}/stats`;
  const anonymous = await request(url);
  assert.equal(anonymous.status, 401);
  assert.equal(anonymous.headers.get('www-authenticate'), 'Bearer');
  assert.equal((await request(url, { headers: { Authorization: 'Bearer not-the-token' } })).status, 401);
  const stats = await request(url, { headers: { Authorization: `Bearer ${STATS_TOKEN}` } });
  assert.equal(stats.status, 200, stats.text);
  assert.equal(stats.json.refusals.too_large, 2);
  assert.ok(!JSON.stringify(logLines()).includes(STATS_TOKEN), 'the token is not logged');
  const [refused] = linesOf(room, 'refused').filter((line) => line.transport === 'http');
  assert.equal(refused?.reason, 'authentication', 'the refused reads are logged too');
});
