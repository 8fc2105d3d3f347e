// The room's budget against the real build: a client that passes a cap gets an ERROR naming it
// while everyone else carries on, nothing accepted is lost, and a crash of the runtime keeps
// every RECEIPTed message and gives only new ids. The room's settings here are the defaults but
// for a small queue cap and small request bodies.

import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { useServer } from './harness.mjs';
import { request } from './http.mjs';
import { TestSocket } from './sockets.mjs';
import { connect, sleep } from './stomp.mjs';

const MAX_QUEUE_MESSAGES = 5;
const MAX_BODY_BYTES = 4096;

const server = useServer({
  vars: {
    ROOM_SETTINGS: JSON.stringify({
      budget: { max_queue_messages: MAX_QUEUE_MESSAGES },
      limits: { max_body_bytes: MAX_BODY_BYTES },
      max_connections: 3,
      allowed_origins: ['https://chat.example'],
    }),
  },
});

let roomCounter = 0;
const roomName = (name) => `budget-${name}-${process.pid}-${++roomCounter}`;
const wsUrl = (room) => `${server.wsUrl}/rooms/${room}`;

/** A raw socket that has sent CONNECT and read CONNECTED. */
async function rawClient(room) {
  const socket = await TestSocket.open(wsUrl(room), ['v12.stomp']);
  socket.send('CONNECT\naccept-version:1.2\nhost:x\n\n\0');
  assert.match(await socket.nth(0), /^CONNECTED\n/);
  return socket;
}

test('a frame over max_frame_bytes is refused, in one WebSocket message or across two, and nothing of it is delivered', async () => {
  const room = roomName('frame');
  const listener = await connect(wsUrl(room));
  const inbox = listener.subscribe('/topic/t');
  await listener.withReceipt((h) => listener.subscribe('/topic/sync', h));
  // 30 header lines, each under max_header_line_bytes (64 KiB), 1.8 MiB in all.
  const head = `h:${'v'.repeat(60 * 1024)}\n`.repeat(30);
  const frame = `SEND\ndestination:/topic/t\n${head}\nbody\0`;

  const whole = await rawClient(room);
  whole.send(frame);
  const [, refusal] = await Promise.all([whole.closed, whole.nth(1)]);
  assert.match(refusal, /^ERROR\nmessage:message too large\n/);
  assert.match(refusal, /max_frame_bytes/);

  const split = await rawClient(room);
  split.send(frame.slice(0, frame.length / 2));
  split.send(frame.slice(frame.length / 2));
  assert.match(await split.nth(1), /^ERROR\nmessage:frame too large\n/);
  await split.closed;

  await listener.publishConfirmed('/topic/t', 'served as before');
  const [first] = await inbox.atLeast(1);
  assert.equal(first.body, 'served as before', 'nothing of the refused frames was delivered');
  await listener.disconnect();
});

test('a flood of control-character headers is stored as it came, and an innocent RECEIPTed SEND after it is stored too', async () => {
  const room = roomName('flood');
  const attacker = await rawClient(room);
  const value = '\u0001'.repeat(60 * 1024);
  const head = Array.from({ length: 15 }, (_, n) => `h${n}:${value}\n`).join('');
  for (let n = 0; n < 3; n++) attacker.send(`SEND\ndestination:/topic/t\n${head}\nflood ${n}\0`);
  const innocent = await connect(wsUrl(room));
  await innocent.publishConfirmed('/topic/t', 'innocent');
  const reader = await connect(wsUrl(room));
  const replay = reader.subscribe('/topic/t', { 'replay-last': '10' });
  await replay.atLeast(2);
  await sleep(300);
  const bodies = replay.bodies;
  assert.equal(bodies.at(-1), 'innocent', `stored: ${JSON.stringify(bodies)}`);
  const flood = replay.items.find((m) => m.body === 'flood 0');
  assert.ok(flood, `the flood's first message is stored too: ${JSON.stringify(bodies)}`);
  assert.ok(flood.headers.h0 === value, 'a header of control characters comes back as it was sent');
  await Promise.all([innocent.disconnect(), reader.disconnect()]);
  attacker.ws.terminate();
});

test('a queue nobody consumes is refused at its cap with "queue full"; nothing accepted is lost', async () => {
  const room = roomName('queue');
  const producer = await connect(wsUrl(room));
  for (let n = 1; n <= MAX_QUEUE_MESSAGES; n++) await producer.publishConfirmed('/queue/jobs', `job ${n}`);
  producer.publish('/queue/jobs', 'one too many');
  const [error] = await producer.errors.atLeast(1);
  assert.equal(error.headers.message, 'queue full');
  assert.match(error.body, /budget\.max_queue_messages/);
  assert.equal((await producer.closes.atLeast(1))[0].code, 1013);

  const consumer = await connect(wsUrl(room));
  const jobs = consumer.subscribe('/queue/jobs');
  await jobs.atLeast(MAX_QUEUE_MESSAGES);
  await sleep(300);
  assert.deepEqual(jobs.bodies, Array.from({ length: MAX_QUEUE_MESSAGES }, (_, n) => `job ${n + 1}`));
  await consumer.disconnect();
});

test('a SIGKILL of the runtime mid-traffic keeps every RECEIPTed message, and gives only new message and session ids after', async () => {
  const room = roomName('crash');
  const watcher = await connect(wsUrl(room));
  const inbox = watcher.subscribe('/topic/log');
  const writer = await connect(wsUrl(room));
  const sessions = [watcher, writer].map((c) => Number(c.connectedFrame.headers.session.slice(1)));
  const receipted = [];
  for (let n = 0; n < 10; n++) {
    await writer.publishConfirmed('/topic/log', `kept ${n}`);
    receipted.push(`kept ${n}`);
  }
  // Messages without a receipt: their history rows wait to share a commit when the runtime dies.
  for (let n = 0; n < 20; n++) writer.publish('/topic/log', `unreceipted ${n}`);
  const seen = await inbox.atLeast(30);
  const newestSeen = Math.max(...seen.map((m) => Number(m.headers['message-id'])));
  await server.kill();
  await server.start();

  const reader = await connect(wsUrl(room));
  assert.ok(Number(reader.connectedFrame.headers.session.slice(1)) > Math.max(...sessions),
    `session ${reader.connectedFrame.headers.session} was not given before the crash`);
  const replay = reader.subscribe('/topic/log', { 'replay-last': '100' });
  await replay.atLeast(receipted.length);
  await sleep(500);
  const replayed = replay.bodies;
  for (const body of receipted) assert.ok(replayed.includes(body), `${body} was RECEIPTed: ${JSON.stringify(replayed)}`);
  await reader.publishConfirmed('/topic/log', 'after the crash');
  await replay.atLeast(replayed.length + 1);
  const live = replay.items.at(-1);
  assert.equal(live.body, 'after the crash');
  assert.ok(Number(live.headers['message-id']) > newestSeen, `id ${live.headers['message-id']} after ${newestSeen} was seen`);
  await reader.disconnect();
});

test('a socket refused as it opens (room full) gets its ERROR and is closed with 1013 at once', async () => {
  const room = roomName('full');
  const members = [];
  for (let n = 0; n < 3; n++) members.push(await rawClient(room));
  const opened = Date.now();
  const refused = await TestSocket.open(wsUrl(room), ['v12.stomp']);
  assert.match(await refused.nth(0), /^ERROR\nmessage:room full\n/);
  const closed = await Promise.race([refused.closed, sleep(3000).then(() => null)]);
  assert.ok(closed, `still open ${Date.now() - opened} ms after its refusal`);
  assert.equal(closed.code, 1013);
  for (const member of members) member.ws.terminate();
});

test('a request body without a length is refused with 413 once it passes the limit, before it ends', async () => {
  const room = roomName('body');
  const answer = await new Promise((resolve, reject) => {
    const req = http.request(`${server.httpUrl}/rooms/${room}/topic/t`, {
      method: 'POST',
      headers: { 'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked' },
    });
    req.on('response', (response) => {
      let text = '';
      response.on('data', (chunk) => { text += chunk; });
      response.on('end', () => resolve({ status: response.statusCode, text }));
    });
    req.on('error', reject);
    // More than the limit, and the body never ends: a room that read it whole would wait.
    req.write('x'.repeat(MAX_BODY_BYTES));
    req.write('x'.repeat(MAX_BODY_BYTES));
    setTimeout(() => reject(new Error('no answer in 10 s: the body was read to its end')), 10_000).unref();
  });
  assert.equal(answer.status, 413, answer.text);
  assert.match(answer.text, /max_body_bytes/);
});

test('every answer under /rooms/{room}/ is readable by an allowed page, refusals included', async () => {
  const room = roomName('cors');
  const headers = { Origin: 'https://chat.example' };
  for (const path of [`/rooms/${room}/nope`, `/rooms/${room}/topic/t?after=x`, `/rooms/${room}`]) {
    const answer = await request(`${server.httpUrl}${path}`, { headers });
    assert.ok(answer.status >= 400, `${path}: ${answer.status}`);
    assert.equal(answer.headers.get('access-control-allow-origin'), 'https://chat.example', path);
    assert.match(answer.headers.get('vary') ?? '', /Origin/, path);
  }
  const other = await request(`${server.httpUrl}/rooms/${room}/nope`, { headers: { Origin: 'https://evil.example' } });
  assert.equal(other.headers.get('access-control-allow-origin'), null);
});
