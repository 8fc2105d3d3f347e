// Abuse limits, and what an unverified sender looks like, in open rooms (no authentication
// configured) on the real build. The limits are set small: 5 messages/s with bursts of 10 and
// 64 KiB bursts of body bytes per connection, 4 connections per room, 3 per address.
//
// wrangler dev gives a request without CF-Connecting-IP the header 127.0.0.1 and keeps one the
// client sends, so stomp.js clients here all count as 127.0.0.1 (at most 3 per room), and the
// connection-cap tests send addresses of their own through `ws`.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';
import { useServer } from './harness.mjs';
import { TestSocket } from './sockets.mjs';
import { connect, sleep } from './stomp.mjs';

const MESSAGES_BURST = 10;
const BYTES_BURST = 65_536;
const MAX_CONNECTIONS = 4;
const MAX_PER_ADDRESS = 3;
/** Under wrangler dev a socket the client closes can take ~10 s to reach the room. */
const CLIENT_CLOSE_NOTICED_MS = 15_000;

const server = useServer({
  vars: {
    ROOM_SETTINGS: JSON.stringify({
      publish_rate: { messages_per_s: 5, messages_burst: MESSAGES_BURST, bytes_per_s: 16_384, bytes_burst: BYTES_BURST },
      max_connections: MAX_CONNECTIONS,
      max_connections_per_address: MAX_PER_ADDRESS,
    }),
  },
});

let roomCounter = 0;
const roomUrl = (name) => `${server.wsUrl}/rooms/${name}-${process.pid}-${++roomCounter}`;

/** Polls until some body of `inbox` is `body`. */
async function until(inbox, body, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!inbox.bodies.includes(body)) {
    if (Date.now() > deadline) assert.fail(`no "${body}" in ${inbox.name} after ${timeoutMs} ms: ${JSON.stringify(inbox.bodies)}`);
    await sleep(50);
  }
}

// --- Raw WebSockets with request headers (here: CF-Connecting-IP) ---------------------------

/** Opens a `ws` socket with extra request headers; resolves once open. */
function openRaw(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['v12.stomp'], { headers });
    const socket = new TestSocket(ws);
    ws.once('open', () => resolve(socket));
    ws.once('unexpected-response', (_request, response) => {
      reject(new Error(`unexpected HTTP ${response.statusCode} instead of a WebSocket upgrade`));
      ws.terminate();
    });
    ws.on('error', reject);
  });
}

/** A STOMP frame as { command, headers, body } (first of repeated headers wins). */
function parseFrame(data) {
  const text = String(data);
  const end = text.indexOf('\n\n');
  const [command, ...lines] = text.slice(0, end).split('\n');
  const unescape = (s) => s.replace(/\\([\\nrc])/g, (_, c) => ({ n: '\n', r: '\r', c: ':', '\\': '\\' })[c]);
  const headers = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = unescape(line.slice(0, colon));
    if (!(name in headers)) headers[name] = unescape(line.slice(colon + 1));
  }
  return { command, headers, body: text.slice(end + 2).replace(/\0\s*$/, '') };
}

/** Opens a socket from `address` and sends CONNECT at once; resolves with the socket and the
 * first frame it got: CONNECTED, or the ERROR of a refusal (sent when the socket opens). */
async function join(url, address) {
  const socket = await openRaw(url, { 'CF-Connecting-IP': address });
  socket.send('CONNECT\naccept-version:1.2\nhost:x\n\n\0');
  return { socket, first: parseFrame(await socket.nth(0)) };
}

async function expectRefused(url, address, message, setting) {
  const { socket, first } = await join(url, address);
  assert.equal(first.command, 'ERROR', `${address} was let in`);
  assert.equal(first.headers.message, message);
  assert.match(first.body, new RegExp(setting), `the body names ${setting}: ${first.body}`);
  const closed = await socket.closed;
  assert.equal(closed.code, 1013, 'closed with 1013 (try again later)');
}

/** Tries to join until let in, for up to timeoutMs; returns the socket and the time it took. */
async function joinWithin(url, address, timeoutMs) {
  const started = Date.now();
  for (;;) {
    const { socket, first } = await join(url, address);
    if (first.command === 'CONNECTED') return { socket, ms: Date.now() - started };
    await socket.closed;
    if (Date.now() - started > timeoutMs) assert.fail(`still refused after ${timeoutMs} ms: ${first.headers.message}`);
    await sleep(500);
  }
}

// --- Publish rate ---------------------------------------------------------------------------

test('a flood past messages_burst gets "rate limit exceeded" and is closed; what it had sent before reaches others in order, and the room keeps serving a slow sender', async () => {
  const url = roomUrl('flood');
  const subscriber = await connect(url);
  const slow = await connect(url);
  const flooder = await connect(url);
  const chat = subscriber.subscribe('/topic/chat');
  await subscriber.withReceipt((h) => subscriber.subscribe('/topic/sync', h));

  const slowSender = (async () => {
    for (let n = 0; n < 8; n++) {
      await slow.publishConfirmed('/topic/chat', `slow-${n}`);
      await sleep(300);
    }
  })();
  for (let n = 0; n < 40; n++) flooder.publish('/topic/chat', `flood-${n}`);
  const [error] = await flooder.errors.atLeast(1);
  assert.equal(error.headers.message, 'rate limit exceeded');
  assert.match(error.body, /slow down/);
  assert.equal((await flooder.closes.atLeast(1))[0].code, 1008);
  await slowSender;
  await slow.publishConfirmed('/topic/chat', 'slow-end');
  await until(chat, 'slow-end');

  const flood = chat.bodies.filter((body) => body.startsWith('flood-'));
  assert.deepEqual(flood, flood.map((_, n) => `flood-${n}`), 'the flood\'s accepted messages arrive in order, without gaps');
  assert.ok(flood.length >= MESSAGES_BURST, `at least the burst was accepted: ${flood.length}`);
  assert.ok(flood.length < 40, 'not the whole flood');
  assert.deepEqual(chat.bodies.filter((body) => body.startsWith('slow-')),
    [...Array.from({ length: 8 }, (_, n) => `slow-${n}`), 'slow-end'], 'every message of the slow sender');
  assert.ok(slow.connected && subscriber.connected);
  await Promise.all([subscriber.disconnect(), slow.disconnect()]);
});

test('body bytes past bytes_burst get "rate limit exceeded" too', async () => {
  const url = roomUrl('bytes');
  const listener = await connect(url);
  const sender = await connect(url);
  const chat = listener.subscribe('/topic/chat');
  await listener.withReceipt((h) => listener.subscribe('/topic/sync', h));
  const big = 'x'.repeat(Math.floor(BYTES_BURST * 0.6));
  sender.publish('/topic/chat', big);
  sender.publish('/topic/chat', big);
  const [error] = await sender.errors.atLeast(1);
  assert.equal(error.headers.message, 'rate limit exceeded');
  assert.match(error.body, /slow down/);
  assert.equal((await sender.closes.atLeast(1))[0].code, 1008);
  await listener.publishConfirmed('/topic/chat', 'end');
  await until(chat, 'end');
  assert.equal(chat.items.length, 2, 'the first big message was delivered, the second was not');
  await listener.disconnect();
});

// --- Connection caps ------------------------------------------------------------------------

test('max_connections_per_address refuses the next socket from that address with "too many connections"; others still get in, and a place is free again once one leaves', async () => {
  const url = roomUrl('per-address');
  const crowd = [];
  for (let n = 0; n < MAX_PER_ADDRESS; n++) {
    const { socket, first } = await join(url, '203.0.113.7');
    assert.equal(first.command, 'CONNECTED', `connection ${n + 1} from the address`);
    crowd.push(socket);
  }
  await expectRefused(url, '203.0.113.7', 'too many connections', 'max_connections_per_address');
  const other = await join(url, '203.0.113.8');
  assert.equal(other.first.command, 'CONNECTED', 'another address still gets in');

  // One leaves with DISCONNECT, so the room closes it itself.
  crowd[0].send('DISCONNECT\nreceipt:bye\n\n\0');
  assert.match(await crowd[0].nth(1), /^RECEIPT\n/);
  const again = await joinWithin(url, '203.0.113.7', CLIENT_CLOSE_NOTICED_MS);
  for (const socket of [...crowd, other.socket, again.socket]) socket.ws.terminate();
});

test('max_connections refuses the next socket with "room full"; once a client closes its socket a new one gets in', async () => {
  const url = roomUrl('full');
  const members = [];
  for (let n = 1; n <= MAX_CONNECTIONS; n++) {
    const { socket, first } = await join(url, `198.51.100.${n}`);
    assert.equal(first.command, 'CONNECTED', `connection ${n}`);
    members.push(socket);
  }
  await expectRefused(url, '198.51.100.50', 'room full', 'max_connections');

  // The client closes its socket without a word, as a closed browser tab does.
  members[0].ws.close();
  const late = await joinWithin(url, '198.51.100.51', CLIENT_CLOSE_NOTICED_MS);
  for (const socket of [...members, late.socket]) socket.ws.terminate();
});

// --- Unverified senders ---------------------------------------------------------------------

test('in an open room a login is only a display name: sender is the session id, sender-name the claim, never sender-verified', async () => {
  const url = roomUrl('open');
  const alice = await connect(url, { login: 'alice' });
  const anonymous = await connect(url);
  const bob = await connect(url, { login: 'bob' });
  const [aliceSession, anonymousSession] = [alice, anonymous].map((c) => c.connectedFrame.headers.session);
  const chat = bob.subscribe('/topic/chat');
  const toAlice = alice.subscribe('/user/queue/inbox');
  await Promise.all([alice, bob].map((c) => c.withReceipt((h) => c.subscribe('/topic/sync', h))));

  await alice.publishConfirmed('/topic/chat', 'hi', { sender: 'admin', 'sender-name': 'admin', 'sender-verified': 'true' });
  await anonymous.publishConfirmed('/topic/chat', 'psst');
  const [fromAlice, fromAnonymous] = await chat.atLeast(2);
  assert.equal(fromAlice.headers.sender, aliceSession);
  assert.equal(fromAlice.headers['sender-name'], 'alice');
  assert.equal(fromAlice.headers['sender-verified'], undefined, 'a client cannot claim to be verified');
  assert.equal(fromAnonymous.headers.sender, anonymousSession);
  assert.equal(fromAnonymous.headers['sender-name'], undefined);
  assert.equal(fromAnonymous.headers['sender-verified'], undefined);

  // /user/ addresses an unverified connection by its session id, not by the name it claims.
  await bob.publishConfirmed('/user/alice/queue/inbox', 'by name');
  await bob.publishConfirmed(`/user/${aliceSession}/queue/inbox`, 'by session');
  await until(toAlice, 'by session');
  assert.deepEqual(toAlice.bodies, ['by session']);

  const presence = bob.subscribe('/presence');
  const [snapshot] = await presence.atLeast(1);
  const members = JSON.parse(snapshot.body).members;
  assert.deepEqual(members.find((m) => m.session === aliceSession), { session: aliceSession, login: 'alice', verified: false });
  assert.deepEqual(members.find((m) => m.session === anonymousSession), { session: anonymousSession, login: null, verified: false });
  await Promise.all([alice, anonymous, bob].map((c) => c.disconnect()));
});
