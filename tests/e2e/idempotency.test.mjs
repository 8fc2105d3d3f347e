// Idempotent publish against the real build: a POST retried with the same `Idempotency-Key`,
// and a SEND retried with the same `idempotency-key`, are answered as the first was (201 with
// the same id, or a RECEIPT naming the same message) and reach a live @stomp/stompjs subscriber
// once, also after wrangler dev restarts between the publish and its retry.
//
// "Once" is checked without waiting on a clock: after the retry, a marker message is published
// on the same destination; once the subscriber has the marker, everything before it has arrived
// (a room delivers in order), so the inbox must hold exactly the first message and the marker.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { useServer } from './harness.mjs';
import { destinationUrl, request } from './http.mjs';
import { connect } from './stomp.mjs';

const server = useServer();

let roomCounter = 0;
const roomName = (name) => `idempotency-${name}-${process.pid}-${++roomCounter}`;
const wsUrl = (room) => `${server.wsUrl}/rooms/${room}`;

/** POSTs `body` to a destination of `room` with an `Idempotency-Key` (when given). */
const post = (room, body, { destination = '/topic/chat', key } = {}) => request(
  destinationUrl(server.httpUrl, room, destination),
  {
    method: 'POST',
    headers: { 'Content-Type': 'text/plain', ...(key ? { 'Idempotency-Key': key } : {}) },
    body,
  },
);

/** Publishes a marker and waits until `inbox` has it; returns every body the inbox holds. */
async function bodiesUpToMarker(room, inbox, destination = '/topic/chat') {
  const marker = `marker ${randomUUID()}`;
  const answer = await post(room, marker, { destination });
  assert.equal(answer.status, 201, answer.text);
  const before = inbox.items.length;
  for (let n = before + 1; !inbox.bodies.includes(marker); n++) await inbox.atLeast(n);
  return inbox.bodies;
}

test('a POST retried with the same Idempotency-Key returns the same id, says it was replayed, and reaches a live subscriber once', async () => {
  const room = roomName('post');
  const subscriber = await connect(wsUrl(room));
  const inbox = subscriber.subscribe('/topic/chat');
  await subscriber.publishConfirmed('/topic/chat', 'subscribed');
  await inbox.atLeast(1);
  const key = randomUUID();
  const first = await post(room, 'deploy finished', { key });
  assert.equal(first.status, 201, first.text);
  assert.equal(first.headers.get('idempotent-replayed'), null);
  const retry = await post(room, 'deploy finished', { key });
  assert.equal(retry.status, 201, retry.text);
  assert.equal(retry.headers.get('idempotent-replayed'), 'true');
  assert.equal(retry.text, first.text, 'the same answer');
  assert.deepEqual(retry.json, { id: first.json.id, destination: '/topic/chat' });
  const bodies = await bodiesUpToMarker(room, inbox);
  assert.deepEqual(bodies.slice(0, 2), ['subscribed', 'deploy finished']);
  assert.equal(bodies.length, 3, `delivered once: ${JSON.stringify(bodies)}`);
  const delivered = inbox.items[1];
  assert.equal(delivered.headers['message-id'], String(first.json.id));
  assert.equal(delivered.headers['idempotency-key'], key, 'the key travels with the message');
  const history = await request(destinationUrl(server.httpUrl, room, '/topic/chat', { last: 10 }));
  assert.deepEqual(
    history.json.messages.map((m) => m.body).filter((b) => b === 'deploy finished'),
    ['deploy finished'],
    'stored once',
  );
  await subscriber.disconnect();
});

test('a SEND retried with the same idempotency-key gets a RECEIPT naming the first message and is delivered once; a POST with that key is a repeat too', async () => {
  const room = roomName('send');
  const subscriber = await connect(wsUrl(room));
  const inbox = subscriber.subscribe('/topic/chat');
  const sender = await connect(wsUrl(room));
  const key = randomUUID();
  const first = await sender.publishConfirmed('/topic/chat', 'hello once', { 'idempotency-key': key });
  const id = first.headers['message-id'];
  assert.match(id ?? '', /^\d+$/, 'the RECEIPT names the message');
  const retry = await sender.publishConfirmed('/topic/chat', 'hello once', { 'idempotency-key': key });
  assert.equal(retry.headers['message-id'], id, 'the original message');
  const viaHttp = await post(room, 'hello once', { key });
  assert.equal(viaHttp.headers.get('idempotent-replayed'), 'true');
  assert.equal(String(viaHttp.json.id), id);
  const bodies = await bodiesUpToMarker(room, inbox);
  assert.equal(bodies.length, 2, `delivered once: ${JSON.stringify(bodies)}`);
  assert.equal(inbox.items[0].headers['message-id'], id);
  assert.equal(sender.errors.items.length, 0);
  await sender.disconnect();
  await subscriber.disconnect();
});

test('a COMMIT whose staged SEND reuses a key for another destination is refused before any of its frames is delivered', async () => {
  const room = roomName('commit');
  const subscriber = await connect(wsUrl(room));
  const inbox = subscriber.subscribe('/topic/b');
  const key = randomUUID();
  assert.equal((await post(room, 'first', { destination: '/topic/a', key })).status, 201);
  const sender = await connect(wsUrl(room));
  const transaction = sender.client.begin();
  const staged = { transaction: transaction.id };
  sender.publish('/topic/b', 'staged before', staged);
  sender.publish('/topic/b', 'reused', { ...staged, 'idempotency-key': key });
  transaction.commit();
  const [error] = await sender.errors.atLeast(1);
  assert.equal(error.headers.message, 'idempotency key reused');
  const bodies = await bodiesUpToMarker(room, inbox, '/topic/b');
  assert.equal(bodies.length, 1, `nothing of the transaction: ${JSON.stringify(bodies)}`);
  await sender.client.deactivate();
  await subscriber.disconnect();
});

test('a retried POST to a queue is enqueued once', async () => {
  const room = roomName('queue');
  const key = randomUUID();
  const first = await post(room, 'job', { destination: '/queue/jobs', key });
  const retry = await post(room, 'job', { destination: '/queue/jobs', key });
  assert.equal(retry.json.id, first.json.id);
  const consumer = await connect(wsUrl(room));
  const jobs = consumer.subscribe('/queue/jobs');
  const bodies = await bodiesUpToMarker(room, jobs, '/queue/jobs');
  assert.equal(bodies.length, 2, `enqueued once: ${JSON.stringify(bodies)}`);
  assert.equal(bodies[0], 'job');
  await consumer.disconnect();
});

test('a key over 200 bytes is refused with 400 naming the limit; a key reused for another destination with 422', async () => {
  const room = roomName('refused');
  const long = await post(room, 'x', { key: 'k'.repeat(201) });
  assert.equal(long.status, 400);
  assert.match(long.text, /1 to 200 bytes/);
  const key = randomUUID();
  assert.equal((await post(room, 'x', { key })).status, 201);
  const reused = await post(room, 'x', { key, destination: '/topic/other' });
  assert.equal(reused.status, 422);
  assert.match(reused.text, /\/topic\/chat/);
  assert.match(reused.text, /idempotency_window_ms/);
});

test('a POST retried after wrangler dev restarts returns the same id and is not delivered again', async () => {
  const room = roomName('restart');
  const key = randomUUID();
  const first = await post(room, 'before the restart', { key });
  assert.equal(first.status, 201, first.text);
  await server.restart();
  const subscriber = await connect(wsUrl(room));
  const inbox = subscriber.subscribe('/topic/chat');
  await subscriber.publishConfirmed('/topic/chat', 'subscribed');
  await inbox.atLeast(1);
  const retry = await post(room, 'before the restart', { key });
  assert.equal(retry.headers.get('idempotent-replayed'), 'true');
  assert.equal(retry.json.id, first.json.id);
  const bodies = await bodiesUpToMarker(room, inbox);
  assert.equal(bodies.length, 2, `not delivered again: ${JSON.stringify(bodies)}`);
  await subscriber.disconnect();
});
