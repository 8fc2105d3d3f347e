// A fan-out from the room to many sockets at once (the loop over them runs in JavaScript, one
// call from wasm per message): each subscriber gets each message once, in order, text as text
// and binary as binary, and subscribers that vanished never stop the others getting theirs.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { useServer } from './harness.mjs';
import { TestSocket } from './sockets.mjs';

const server = useServer();
let roomCounter = 0;
const freshRoom = (name) => `${server.wsUrl}/rooms/${name}-${process.pid}-${++roomCounter}`;

/** A raw STOMP 1.2 client subscribed to `destination`, its SUBSCRIBE receipted. */
async function subscriber(url, destination) {
  const socket = await TestSocket.open(url, ['v12.stomp']);
  socket.send('CONNECT\naccept-version:1.2\nhost:x\n\n\0');
  assert.match(await socket.nth(0), /^CONNECTED\n/);
  socket.send(`SUBSCRIBE\nid:0\ndestination:${destination}\nreceipt:subscribed\n\n\0`);
  assert.match(await socket.nth(1), /^RECEIPT\nreceipt-id:subscribed\n/);
  return socket;
}

/**
 * The frames a socket received after its RECEIPT, one entry per STOMP frame: a text message
 * may carry several (the room joins frames due to the same sockets), a binary one is kept
 * whole (these tests send one binary frame at a time).
 */
function framesAfterReceipt(socket) {
  return socket.received.slice(2).flatMap((message) =>
    typeof message === 'string' ? message.split('\0').filter((frame) => frame.trim() !== '') : [message]);
}

const bodyOf = (frame) => frame.slice(frame.indexOf('\n\n') + 2);

/** Waits until the socket's frames include one whose body is `body`. */
async function until(socket, body) {
  for (let n = 2; ; n++) {
    await socket.nth(n);
    if (framesAfterReceipt(socket).some((frame) => typeof frame === 'string' && bodyOf(frame) === body)) return;
  }
}

test('one SEND reaches each of 60 subscribers exactly once, in order, text as text and binary as binary', async () => {
  const url = freshRoom('fanout');
  const subscribers = [];
  for (let n = 0; n < 60; n++) subscribers.push(await subscriber(url, '/topic/many'));
  const publisher = await subscriber(url, '/topic/receipts');
  publisher.send('SEND\ndestination:/topic/many\ncontent-type:text/plain\n\nfirst\0');
  const binaryBody = Buffer.from([1, 255, 2, 254]);
  publisher.send(Buffer.concat([
    Buffer.from(`SEND\ndestination:/topic/many\ncontent-type:application/octet-stream\ncontent-length:${binaryBody.length}\n\n`),
    binaryBody,
    Buffer.from([0]),
  ]));
  publisher.send('SEND\ndestination:/topic/many\ncontent-type:text/plain\n\nlast\0');
  for (const socket of subscribers) {
    await until(socket, 'last');
    const frames = framesAfterReceipt(socket);
    assert.equal(frames.length, 3, `three frames, each once: ${JSON.stringify(frames)}`);
    const [first, binary, last] = frames;
    assert.equal(typeof first, 'string');
    assert.match(first, /^MESSAGE\n/);
    assert.equal(bodyOf(first), 'first');
    assert.ok(Buffer.isBuffer(binary), 'the binary body arrived in a binary WebSocket message');
    assert.deepEqual([...binary.subarray(binary.length - 1 - binaryBody.length, binary.length - 1)], [...binaryBody]);
    assert.equal(bodyOf(last), 'last');
  }
  for (const socket of [...subscribers, publisher]) socket.ws.terminate();
});

test('subscribers that vanished without a close, or closed, never stop a fan-out reaching the others', async () => {
  const url = freshRoom('vanished');
  const subscribers = [];
  for (let n = 0; n < 30; n++) subscribers.push(await subscriber(url, '/topic/many'));
  const publisher = await subscriber(url, '/topic/receipts');
  // Every third vanishes (its TCP connection dropped), every third after it closes cleanly:
  // the messages below are sent while the room may still list them.
  const gone = subscribers.filter((_, n) => n % 3 === 0);
  const closed = subscribers.filter((_, n) => n % 3 === 1);
  const kept = subscribers.filter((_, n) => n % 3 === 2);
  for (const socket of gone) socket.ws.terminate();
  for (const socket of closed) socket.ws.close();
  const bodies = Array.from({ length: 10 }, (_, n) => `message ${n}`);
  for (const body of bodies) publisher.send(`SEND\ndestination:/topic/many\n\n${body}\0`);
  for (const socket of kept) {
    await until(socket, bodies.at(-1));
    assert.deepEqual(framesAfterReceipt(socket).map(bodyOf), bodies);
  }
  // A new subscriber after all that is reached as well.
  const late = await subscriber(url, '/topic/many');
  publisher.send('SEND\ndestination:/topic/many\n\nafter\0');
  for (const socket of [...kept, late]) await until(socket, 'after');
  for (const socket of [...kept, late, publisher]) socket.ws.terminate();
});
