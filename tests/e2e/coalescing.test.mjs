// Coalesced frames reach every client the README names intact: several MESSAGE frames in one
// WebSocket message (or one SockJS frame `a["…","…"]`) are handed on by each client as separate
// messages, each once, in order, with their bodies and headers. Coalescing is made to happen
// within one event, so nothing here depends on timing: a SUBSCRIBE with `replay-last: N`
// replays N stored messages at once; one client WebSocket message carrying several SENDs, or a
// transaction's COMMIT, releases several to each subscriber at once. Each client's own socket
// is watched too, so a test proves the frames really came coalesced.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Client, Stomp } from '@stomp/stompjs';
import SockJS from 'sockjs-client';
import StompJs233 from 'stompjs';
import WebSocket from 'ws';
import { DevServer, useServer } from './harness.mjs';
import { TestSocket } from './sockets.mjs';
import { connect, Inbox } from './stomp.mjs';

const server = useServer({ vars: { ROOM_SETTINGS: JSON.stringify({ endpoints: ['/ws-stomp'] }) } });

const N = 5;
let counter = 0;
/** A destination no other test uses. */
const fresh = (name) => `/topic/${name}-${process.pid}-${++counter}`;
const roomUrl = (base, name) => `${base}/rooms/${name}-${process.pid}-${++counter}`;

// ---------------------------------------------------------------------------------------------
// The wire: STOMP frames in a WebSocket message.

/** The frames of one WebSocket message (a Buffer): command, headers (values as sent), body
 * (a Buffer, read by content-length when there is one), skipping heart-beat EOLs between. */
function parseFrames(bytes) {
  const frames = [];
  let at = 0;
  const lineEnd = () => {
    const end = bytes.indexOf(0x0a, at);
    assert.ok(end >= 0, `a complete line at ${at} of ${JSON.stringify(bytes.toString())}`);
    const line = bytes.subarray(at, end).toString('utf8').replace(/\r$/, '');
    at = end + 1;
    return line;
  };
  while (at < bytes.length) {
    if (bytes[at] === 0x0a || bytes[at] === 0x0d) { at += 1; continue; }
    const command = lineEnd();
    const headers = {};
    for (let line = lineEnd(); line !== ''; line = lineEnd()) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon);
      if (!(name in headers)) headers[name] = line.slice(colon + 1);
    }
    const length = headers['content-length'] === undefined ? bytes.indexOf(0, at) - at : Number(headers['content-length']);
    assert.ok(length >= 0, 'the frame ends with a NUL');
    const body = bytes.subarray(at, at + length);
    at += length;
    assert.equal(bytes[at], 0, `frame ${command} is NUL-terminated`);
    at += 1;
    frames.push({ command, headers, body });
  }
  return frames;
}

/** Records every WebSocket message a `ws` socket receives, as { binary, frames }. */
function recordMessages(ws) {
  const messages = [];
  ws.on('message', (data, binary) => {
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    messages.push({ binary, frames: parseFrames(bytes) });
  });
  return messages;
}

/** How many MESSAGE frames each WebSocket message carried, for those that carried any. */
const messageFramesPerSocketMessage = (messages) => messages
  .map(({ frames }) => frames.filter((f) => f.command === 'MESSAGE').length)
  .filter((n) => n > 0);

// ---------------------------------------------------------------------------------------------
// What is sent, and what must arrive.

/** Body i: awkward for every parser (quotes, UTF-8, a JSON-hostile line separator, blank lines
 * and a line that looks like the start of another frame). */
const bodyOf = (i) => `message ${i}: "quoted" é \u2028 end\n\nMESSAGE\ndestination:/not/a/frame\n\n${'x'.repeat(i * 100)}`;
const headersOf = (i) => ({ 'x-seq': String(i), 'x-note': `note number ${i}`, 'content-type': 'text/plain' });

/** Publishes bodies 1..n to `destination` over the room at `url`, each with a RECEIPT, so all
 * are stored (and so replayable) when this resolves. */
async function storeHistory(url, destination, n = N) {
  const publisher = await connect(url);
  for (let i = 1; i <= n; i++) await publisher.publishConfirmed(destination, bodyOf(i), headersOf(i));
  await publisher.disconnect();
}

/** Asserts that `messages` ({ body, headers } in the order handed on) are exactly bodies
 * first..first+n-1 on `destination`, each once, in order, headers intact. */
function assertIntact(messages, destination, { n = N, first = 1, replayed = true } = {}) {
  const expected = Array.from({ length: n }, (_, k) => first + k);
  assert.deepEqual(messages.map((m) => m.headers['x-seq']), expected.map(String), 'each message once, in order');
  assert.deepEqual(messages.map((m) => m.body), expected.map(bodyOf), 'bodies intact');
  for (const [k, message] of messages.entries()) {
    const i = expected[k];
    assert.equal(message.headers['x-note'], `note number ${i}`);
    assert.equal(message.headers['content-type'], 'text/plain');
    assert.equal(message.headers.destination, destination);
    if (replayed) assert.equal(message.headers.replayed, 'true');
  }
  const ids = messages.map((m) => Number(m.headers['message-id']));
  assert.ok(ids.every((id, k) => k === 0 || id > ids[k - 1]), `message ids increase: ${ids}`);
}

// ---------------------------------------------------------------------------------------------
// Clients.

/** A `ws` socket recorded from its first message. */
function recordedSocket(url, protocols, sockets) {
  const ws = new WebSocket(url, protocols);
  sockets.push({ ws, messages: recordMessages(ws) });
  return ws;
}

/** @stomp/stompjs `Client` in Node over a `ws` socket (or a `webSocketFactory`); resolves once
 * CONNECTED. */
async function stompjsClient(webSocketFactory) {
  const client = new Client({ webSocketFactory, reconnectDelay: 0, heartbeatIncoming: 0, heartbeatOutgoing: 0 });
  const connected = new Promise((resolve, reject) => {
    client.onConnect = resolve;
    client.onStompError = (frame) => reject(new Error(`ERROR: ${frame.headers.message}: ${frame.body}`));
    client.onWebSocketClose = (event) => reject(new Error(`closed before CONNECTED (${event.code} ${event.reason})`));
  });
  client.activate();
  await connected;
  return client;
}

/** @stomp/stompjs's `Stomp.over` compatibility (a CompatClient); resolves once CONNECTED. */
async function compatClient(webSocketFactory) {
  const client = Stomp.over(webSocketFactory);
  client.debug = () => {};
  client.heartbeat = { outgoing: 0, incoming: 0 };
  await new Promise((resolve, reject) => client.connect({}, resolve, (frame) => reject(new Error(`ERROR: ${frame.headers?.message}`))));
  return client;
}

/** Subscribes a @stomp/stompjs client (Client or CompatClient) with a RECEIPT; resolves with the
 * Inbox once the RECEIPT is in, which comes after every message a replay sends. */
async function subscribeConfirmed(client, destination, headers = {}) {
  const inbox = new Inbox(`messages on ${destination}`);
  const receipt = `sub-${Math.random().toString(36).slice(2)}`;
  const ready = new Promise((resolve) => client.watchForReceipt(receipt, resolve));
  client.subscribe(destination, (message) => inbox.push(message), { ...headers, receipt });
  await ready;
  return inbox;
}

/** stomp.js 2.3.3 (the `stompjs` package) over `socket` with `Stomp.over`, as older tutorials
 * connect; STOMP 1.1. Resolves once CONNECTED, with its receipts as an Inbox. */
async function stompjs233(socket) {
  const client = StompJs233.over(socket);
  client.debug = null;
  client.heartbeat = { outgoing: 0, incoming: 0 };
  const receipts = new Inbox('receipts');
  client.onreceipt = (frame) => receipts.push(frame);
  await new Promise((resolve, reject) => client.connect({}, resolve, (error) => reject(new Error(`stomp.js 2.3.3: ${error?.body ?? error}`))));
  return { client, receipts };
}

/** Subscribes a stomp.js 2.3.3 client with a RECEIPT; resolves with the Inbox once it is in. */
async function subscribe233({ client, receipts }, destination, headers = {}) {
  const inbox = new Inbox(`messages on ${destination}`);
  const receipt = `sub-${Math.random().toString(36).slice(2)}`;
  client.subscribe(destination, (frame) => inbox.push(frame), { ...headers, receipt });
  await receipts.atLeast(receipts.items.length + 1);
  assert.equal(receipts.items.at(-1).headers['receipt-id'], receipt);
  return inbox;
}

/** sockjs-client to /ws-stomp forced to `transport`, its SockJS frames recorded as they reach
 * it (for the `websocket` transport, one SockJS frame is one WebSocket message). */
function recordedSockJs(transport, sockets) {
  const sock = new SockJS(`${server.httpUrl}/ws-stomp`, null, { transports: [transport] });
  const sockjsFrames = [];
  const handle = sock._transportMessage;
  // sockjs-client binds this when its transport opens, after the constructor returns.
  sock._transportMessage = function record(frame) {
    sockjsFrames.push(frame);
    return handle.call(this, frame);
  };
  sockets.push({ sock, sockjsFrames });
  return sock;
}

/** The STOMP frames each recorded SockJS `a[...]` frame carried, by command. */
const sockjsMessageFrames = (sockjsFrames) => sockjsFrames
  .filter((frame) => frame.startsWith('a'))
  .map((frame) => JSON.parse(frame.slice(1)).filter((m) => m.startsWith('MESSAGE\n')).length)
  .filter((n) => n > 0);

/** A raw STOMP connection over a `ws` socket: CONNECTED read, every later message recorded. */
async function rawConnect(url, version = '1.2') {
  const socket = await TestSocket.open(url);
  socket.send(`CONNECT\naccept-version:${version}\nhost:x\n\n\0`);
  assert.match(await socket.nth(0), /^CONNECTED\n/);
  return socket;
}

/** The parsed frames of a raw socket's n-th message, with whether it was binary. */
async function rawMessage(socket, n) {
  const data = await socket.nth(n);
  const binary = Buffer.isBuffer(data);
  return { binary, frames: parseFrames(binary ? data : Buffer.from(data, 'utf8')) };
}

const asText = (frame) => ({ headers: frame.headers, body: frame.body.toString('utf8') });

/** A raw socket's messages after CONNECTED, up to the one carrying a RECEIPT. A busy room (the
 * barrier SUBSCRIBE arrives right behind the replay's) may put that RECEIPT in the replay's
 * own message: it is due to the same connection. */
async function rawUntilReceipt(socket) {
  const messages = [];
  for (let n = 1; !messages.some((m) => m.frames.some((f) => f.command === 'RECEIPT')); n++) {
    messages.push(await rawMessage(socket, n));
  }
  return messages;
}

const commandsOf = (messages) => messages.flatMap((m) => m.frames.map((f) => f.command));

// ---------------------------------------------------------------------------------------------
// The wire shape, raw.

test(`raw WebSocket: a replay of ${N} arrives as ONE WebSocket message of ${N} NUL-terminated MESSAGE frames, in order, bodies and headers intact`, async () => {
  const url = roomUrl(server.wsUrl, 'raw');
  const destination = fresh('raw');
  await storeHistory(url, destination);
  const socket = await rawConnect(url);
  socket.send(`SUBSCRIBE\nid:s\ndestination:${destination}\nreplay-last:${N}\n\n\0`);
  // A barrier after it: its RECEIPT says the replay is all in.
  socket.send('SUBSCRIBE\nid:barrier\ndestination:/topic/barrier\nreceipt:done\n\n\0');
  const messages = await rawUntilReceipt(socket);
  const [replay] = messages;
  assert.deepEqual(commandsOf(messages), [...Array(N).fill('MESSAGE'), 'RECEIPT'], 'the replay, then the RECEIPT: nothing else');
  assert.equal(replay.binary, false, 'text frames in a text message');
  assert.deepEqual(replay.frames.slice(0, N).map((f) => f.command), Array(N).fill('MESSAGE'), `one message, ${N} frames`);
  assert.ok(messages.length <= 2, 'the RECEIPT alone or with the replay');
  assertIntact(replay.frames.slice(0, N).map(asText), destination);
  await socket.close();
});

test(`raw WebSocket with coalesce_frames: false: the same replay of ${N} arrives as ${N} WebSocket messages of one frame each`, async () => {
  const off = new DevServer({ vars: { ROOM_SETTINGS: JSON.stringify({ coalesce_frames: false }) } });
  try {
    await off.start();
    const url = roomUrl(off.wsUrl, 'off');
    const destination = fresh('off');
    await storeHistory(url, destination);
    const socket = await rawConnect(url);
    socket.send(`SUBSCRIBE\nid:s\ndestination:${destination}\nreplay-last:${N}\n\n\0`);
    socket.send('SUBSCRIBE\nid:barrier\ndestination:/topic/barrier\nreceipt:done\n\n\0');
    const receipt = await rawMessage(socket, N + 1);
    assert.deepEqual(receipt.frames.map((f) => f.command), ['RECEIPT']);
    assert.equal(socket.received.length, N + 2, 'CONNECTED, one message per replayed frame, the RECEIPT');
    const replay = await Promise.all(Array.from({ length: N }, (_, k) => rawMessage(socket, k + 1)));
    assert.deepEqual(replay.map((m) => m.frames.length), Array(N).fill(1), 'one frame per WebSocket message');
    assertIntact(replay.map((m) => asText(m.frames[0])), destination);
    await socket.close();
  } finally {
    await off.stop();
    off.cleanup();
  }
});

test('raw WebSocket: a SockJS socket gets a replay as ONE WebSocket message, one SockJS frame a["MESSAGE…","MESSAGE…",…] of one STOMP frame each', async () => {
  const destination = fresh('sockjs-raw');
  await storeHistory(`${server.wsUrl}/ws-stomp`, destination);
  const socket = await TestSocket.open(`${server.wsUrl}/ws-stomp/000/raw${process.pid}${++counter}/websocket`);
  assert.equal(await socket.nth(0), 'o');
  socket.send(JSON.stringify(['CONNECT\naccept-version:1.2\nhost:x\n\n\0']));
  assert.match(await socket.nth(1), /^a\["CONNECTED\\n/);
  socket.send(JSON.stringify([`SUBSCRIBE\nid:s\ndestination:${destination}\nreplay-last:${N}\n\n\0`]));
  socket.send(JSON.stringify(['SUBSCRIBE\nid:barrier\ndestination:/topic/barrier\nreceipt:done\n\n\0']));
  const replay = await socket.nth(2);
  assert.ok(replay.startsWith('a['), `a SockJS messages frame: ${replay.slice(0, 40)}`);
  const carried = JSON.parse(replay.slice(1));
  // A busy room may put the barrier's RECEIPT in the same SockJS frame; else it comes next.
  const joined = carried.at(-1).startsWith('RECEIPT\n');
  if (!joined) assert.match(await socket.nth(3), /^a\["RECEIPT\\n/);
  const stompFrames = joined ? carried.slice(0, -1) : carried;
  assert.equal(socket.received.length, joined ? 3 : 4, 'o, CONNECTED, the replay, the RECEIPT: nothing else');
  assert.equal(stompFrames.length, N, `${N} SockJS messages in the one frame`);
  const parsed = stompFrames.map((text) => parseFrames(Buffer.from(text, 'utf8')));
  assert.deepEqual(parsed.map((frames) => frames.length), Array(N).fill(1), 'each SockJS message one STOMP frame');
  assertIntact(parsed.map(([frame]) => asText(frame)), destination);
  await socket.close();
});

// ---------------------------------------------------------------------------------------------
// Each client, handed a coalesced replay.

test(`@stomp/stompjs Client (Node, ws): a replay of ${N} coalesced into one WebSocket message is handed on as ${N} messages, once each, in order, intact`, async () => {
  const url = roomUrl(server.wsUrl, 'stompjs');
  const destination = fresh('stompjs');
  await storeHistory(url, destination);
  const sockets = [];
  const client = await stompjsClient(() => recordedSocket(url, ['v12.stomp', 'v11.stomp', 'v10.stomp'], sockets));
  const inbox = await subscribeConfirmed(client, destination, { 'replay-last': String(N) });
  assert.deepEqual(messageFramesPerSocketMessage(sockets[0].messages), [N], 'the replay came as one WebSocket message');
  assert.equal(inbox.items.length, N, 'nothing more before the RECEIPT');
  assertIntact(inbox.items, destination);
  await client.deactivate();
});

test(`@stomp/stompjs Stomp.over (CompatClient): a replay of ${N} coalesced into one WebSocket message is handed on as ${N} messages, once each, in order, intact`, async () => {
  const url = roomUrl(server.wsUrl, 'compat');
  const destination = fresh('compat');
  await storeHistory(url, destination);
  const sockets = [];
  const client = await compatClient(() => recordedSocket(url, ['v12.stomp', 'v11.stomp', 'v10.stomp'], sockets));
  const inbox = await subscribeConfirmed(client, destination, { 'replay-last': String(N) });
  assert.deepEqual(messageFramesPerSocketMessage(sockets[0].messages), [N], 'the replay came as one WebSocket message');
  assert.equal(inbox.items.length, N, 'nothing more before the RECEIPT');
  assertIntact(inbox.items, destination);
  await new Promise((resolve) => client.disconnect(resolve));
});

test(`stomp.js 2.3.3 (the stompjs package), Stomp.over(ws): a replay of ${N} coalesced into one WebSocket message is handed on as ${N} messages, once each, in order, intact`, async () => {
  const url = roomUrl(server.wsUrl, 'stomp233');
  const destination = fresh('stomp233');
  await storeHistory(url, destination);
  const sockets = [];
  const old = await stompjs233(recordedSocket(url, ['v10.stomp', 'v11.stomp'], sockets));
  const inbox = await subscribe233(old, destination, { 'replay-last': String(N) });
  assert.deepEqual(messageFramesPerSocketMessage(sockets[0].messages), [N], 'the replay came as one WebSocket message');
  assert.equal(inbox.items.length, N, 'nothing more before the RECEIPT');
  assertIntact(inbox.items, destination);
  old.client.disconnect();
});

test('binary: text, two binary bodies holding NUL bytes, text, replayed: the binary pair is ONE binary WebSocket message (never mixed with text), and @stomp/stompjs gets every body byte for byte', async () => {
  const url = roomUrl(server.wsUrl, 'binary');
  const destination = fresh('binary');
  const binaries = [
    Uint8Array.from([0, 1, 0, 0, 255, 0xfe, 10, 10, 0]),
    Uint8Array.from([0, 0, 0x4d, 0x45, 0x53, 0x53, 0x41, 0x47, 0x45, 10, 0, 0x80]),
  ];
  const publisher = await connect(url);
  await publisher.publishConfirmed(destination, 'text before');
  for (const [k, binaryBody] of binaries.entries()) {
    await publisher.withReceipt((receipt) => publisher.client.publish({
      destination, binaryBody, headers: { ...receipt, 'x-seq': `b${k}`, 'content-type': 'application/octet-stream' },
    }));
  }
  await publisher.publishConfirmed(destination, 'text after');
  await publisher.disconnect();

  const raw = await rawConnect(url);
  raw.send(`SUBSCRIBE\nid:s\ndestination:${destination}\nreplay-last:4\n\n\0`);
  raw.send('SUBSCRIBE\nid:barrier\ndestination:/topic/barrier\nreceipt:done\n\n\0');
  const wire = await rawUntilReceipt(raw);
  assert.deepEqual(wire.slice(0, 3).map((m) => [m.binary, m.frames.map((f) => f.command).join()]),
    [[false, 'MESSAGE'], [true, 'MESSAGE,MESSAGE'], [false, commandsOf(wire.slice(2, 3)).join()]],
    'text alone, the two binary frames in one binary message, then text');
  assert.deepEqual(commandsOf(wire.slice(2)), ['MESSAGE', 'RECEIPT'], 'the last text, then the RECEIPT (alone or with it): nothing else');
  assert.ok(wire.slice(2).every((m) => !m.binary), 'text after binary, in text messages');
  assert.deepEqual(wire[1].frames.map((f) => [...f.body]), binaries.map((b) => [...b]), 'binary bodies intact on the wire');
  await raw.close();

  const sockets = [];
  const client = await stompjsClient(() => recordedSocket(url, ['v12.stomp'], sockets));
  const inbox = await subscribeConfirmed(client, destination, { 'replay-last': '4' });
  assert.deepEqual(sockets[0].messages.filter((m) => m.binary).map((m) => m.frames.length), [2], 'one binary message of two frames');
  assert.equal(inbox.items.length, 4, 'nothing more before the RECEIPT');
  const [before, b0, b1, after] = inbox.items;
  assert.equal(before.body, 'text before');
  assert.equal(after.body, 'text after');
  assert.deepEqual([...b0.binaryBody], [...binaries[0]]);
  assert.deepEqual([...b1.binaryBody], [...binaries[1]]);
  assert.deepEqual([b0, b1].map((m) => m.headers['x-seq']), ['b0', 'b1']);
  assert.deepEqual([b0, b1].map((m) => m.headers['content-length']), binaries.map((b) => String(b.length)));
  await client.deactivate();
});

// sockjs-client's transports: every one works with /ws-stomp when the endpoint is one room. The
// `websocket` transport gets a run as one SockJS frame; a session over HTTP is handed what one
// event sent it when the event's sends end, so a streaming receiver gets the replay as one
// SockJS frame too, in one write, and a waiting poll is answered with all of it.
for (const transport of ['websocket', 'xhr-streaming', 'xhr-polling', 'eventsource']) {
  const shape = `as ONE SockJS frame a[…] of ${N} messages`;
  test(`sockjs-client 1.6.1 over ${transport} with @stomp/stompjs: a replay of ${N} ${shape} is handed on as ${N} messages, once each, in order, intact`, async () => {
    const destination = fresh(`sockjs-${transport}`);
    await storeHistory(`${server.wsUrl}/ws-stomp`, destination);
    const sockets = [];
    const client = await stompjsClient(() => recordedSockJs(transport, sockets));
    assert.equal(sockets.at(-1).sock.transport, transport, 'the forced transport carried the session');
    const inbox = await subscribeConfirmed(client, destination, { 'replay-last': String(N) });
    assert.deepEqual(sockjsMessageFrames(sockets.at(-1).sockjsFrames), [N], 'the replay came as one SockJS frame');
    assert.equal(inbox.items.length, N, 'nothing more before the RECEIPT');
    assertIntact(inbox.items, destination);
    await client.deactivate();
  });
}

test(`stomp.js 2.3.3, Stomp.over(new SockJS(…)) as older tutorials connect: a replay of ${N} as ONE SockJS frame is handed on as ${N} messages, once each, in order, intact`, async () => {
  const destination = fresh('sockjs-233');
  await storeHistory(`${server.wsUrl}/ws-stomp`, destination);
  const sockets = [];
  const old = await stompjs233(recordedSockJs('websocket', sockets));
  const inbox = await subscribe233(old, destination, { 'replay-last': String(N) });
  assert.deepEqual(sockjsMessageFrames(sockets[0].sockjsFrames), [N], 'the replay came as one SockJS frame');
  assert.equal(inbox.items.length, N, 'nothing more before the RECEIPT');
  assertIntact(inbox.items, destination);
  old.client.disconnect();
});

// ---------------------------------------------------------------------------------------------
// Live fan-outs coalesced within one event.

const sendFrame = (destination, i) => `SEND\ndestination:${destination}\n${Object.entries(headersOf(i)).map(([k, v]) => `${k}:${v}`).join('\n')}\ncontent-length:${Buffer.byteLength(bodyOf(i))}\n\n${bodyOf(i)}\0`;

test('several SENDs in one WebSocket message reach a raw, a @stomp/stompjs Client, a Stomp.over and a SockJS subscriber as ONE WebSocket message each (one SockJS frame), in order, intact', async () => {
  const url = `${server.wsUrl}/ws-stomp`;
  const destination = fresh('live');
  // All STOMP 1.2 and all with subscription id sub-0 (stomp.js's first), so one encoding of each
  // MESSAGE reaches them all and the three SENDs make one run for the four of them.
  const raw = await rawConnect(url);
  raw.send(`SUBSCRIBE\nid:sub-0\ndestination:${destination}\nreceipt:raw-ready\n\n\0`);
  assert.match(await raw.nth(1), /^RECEIPT\n/);
  const recorded = [];
  const client = await stompjsClient(() => recordedSocket(url, ['v12.stomp'], recorded));
  const compat = await compatClient(() => recordedSocket(url, ['v12.stomp'], recorded));
  const sockjs = [];
  const overSockJs = await stompjsClient(() => recordedSockJs('websocket', sockjs));
  const inboxes = {
    'Client': await subscribeConfirmed(client, destination),
    'Stomp.over': await subscribeConfirmed(compat, destination),
    'SockJS': await subscribeConfirmed(overSockJs, destination),
  };

  const sender = await rawConnect(url);
  sender.send([1, 2, 3].map((i) => sendFrame(destination, i)).join(''));
  // A lone fourth, after the three: once it is in, nothing of the three can still be coming.
  // It comes alone, or (the room busy, the two arriving back to back) in the same message.
  sender.send(sendFrame(destination, 4));
  const threeThenOne = (counts, what) => assert.ok(
    [[3, 1], [4]].some((shape) => JSON.stringify(shape) === JSON.stringify(counts)),
    `${what}: the three in one message, the fourth alone or with them: ${JSON.stringify(counts)}`,
  );
  for (const [name, inbox] of Object.entries(inboxes)) {
    await inbox.atLeast(4);
    assert.equal(inbox.items.length, 4, name);
    assertIntact(inbox.items, destination, { n: 4, replayed: false });
  }
  const rawLive = [await rawMessage(raw, 2)];
  if (rawLive[0].frames.length < 4) rawLive.push(await rawMessage(raw, 3));
  threeThenOne(rawLive.map((m) => m.frames.length), 'raw');
  assertIntact(rawLive.flatMap((m) => m.frames).map(asText), destination, { n: 4, replayed: false });
  for (const { messages } of recorded) {
    threeThenOne(messageFramesPerSocketMessage(messages), 'a stomp.js socket');
  }
  threeThenOne(sockjsMessageFrames(sockjs[0].sockjsFrames), 'SockJS');
  await Promise.all([client.deactivate(), overSockJs.deactivate(), new Promise((resolve) => compat.disconnect(resolve))]);
  await Promise.all([raw.close(), sender.close()]);
});

test('a transaction\'s COMMIT releasing three SENDs reaches a stomp.js 2.3.3 and a raw STOMP 1.1 subscriber as ONE WebSocket message each, in order, intact', async () => {
  const url = roomUrl(server.wsUrl, 'commit');
  const destination = fresh('commit');
  // Both STOMP 1.1 with subscription id sub-0: one encoding, one run.
  const raw = await rawConnect(url, '1.1');
  raw.send(`SUBSCRIBE\nid:sub-0\ndestination:${destination}\nreceipt:raw-ready\n\n\0`);
  assert.match(await raw.nth(1), /^RECEIPT\n/);
  const sockets = [];
  const old = await stompjs233(recordedSocket(url, ['v10.stomp', 'v11.stomp'], sockets));
  const inbox = await subscribe233(old, destination);

  const sender = await connect(url);
  const tx = sender.client.begin('tx-1');
  for (const i of [1, 2, 3]) sender.publish(destination, bodyOf(i), { ...headersOf(i), transaction: tx.id });
  tx.commit();
  // A lone fourth, after the COMMIT: once it is in, nothing of the three can still be coming.
  await sender.publishConfirmed(destination, bodyOf(4), headersOf(4));
  await inbox.atLeast(4);
  assert.equal(inbox.items.length, 4);
  assertIntact(inbox.items, destination, { n: 4, replayed: false });
  assert.deepEqual(messageFramesPerSocketMessage(sockets[0].messages), [3, 1], 'stomp.js 2.3.3\'s socket: the three in one message');
  const rawLive = await Promise.all([2, 3].map((n) => rawMessage(raw, n)));
  assert.deepEqual(rawLive.map((m) => m.frames.length), [3, 1], 'raw: the three in one message, the fourth alone');
  assertIntact(rawLive.flatMap((m) => m.frames).map(asText), destination, { n: 4, replayed: false });
  old.client.disconnect();
  await sender.disconnect();
  await raw.close();
});
