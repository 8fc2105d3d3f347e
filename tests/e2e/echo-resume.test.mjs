// Echo control and resumes that say what was lost, against the real build with real
// @stomp/stompjs clients: a subscription with `echo: false` never sees its own messages but
// sees everyone else's; a resume from before what the history still holds is reported on
// STOMP (replay-incomplete on the first MESSAGE the subscription receives, replayed or live,
// and on the SUBSCRIBE's RECEIPT), on an HTTP poll ("incomplete": true) and on an event
// stream (an `incomplete` event first). Rooms
// keep HISTORY_LIMIT messages per topic, so a few dozen messages trim it (storage trims 32 at
// a time). Each test uses its own rooms.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { useServer } from './harness.mjs';
import { destinationUrl, EventStream, request } from './http.mjs';
import { connect } from './stomp.mjs';

const HISTORY_LIMIT = 2;
/** Enough messages for a trim: HISTORY_LIMIT + 32 stored set one off, and a few more. */
const TRIMMED = HISTORY_LIMIT + 32 + 6;

const server = useServer({
  vars: { ROOM_SETTINGS: JSON.stringify({ history_limit: HISTORY_LIMIT }) },
});

let roomCounter = 0;
const roomName = (name) => `echo-resume-${name}-${process.pid}-${++roomCounter}`;
const wsUrl = (room) => `${server.wsUrl}/rooms/${room}`;
const url = (room, query = {}) => destinationUrl(server.httpUrl, room, '/topic/chat', query);

/** Publishes `count` messages to /topic/chat of `room` (the last confirmed, so all are
 * stored and trimmed); resolves with their ids, oldest first. */
async function publishTrimmed(room, count) {
  const publisher = await connect(wsUrl(room));
  const seen = publisher.subscribe('/topic/chat');
  for (let n = 1; n < count; n++) publisher.publish('/topic/chat', `m${n}`);
  await publisher.publishConfirmed('/topic/chat', `m${count}`);
  const messages = await seen.atLeast(count);
  await publisher.disconnect();
  return messages.map((message) => Number(message.headers['message-id']));
}

/** A new client's SUBSCRIBE with replay-after and a receipt: { messages, receipt } once the
 * RECEIPT, which follows the replay, has come. */
async function resume(room, after) {
  const client = await connect(wsUrl(room));
  let inbox;
  const receipt = await client.withReceipt((headers) => {
    inbox = client.subscribe('/topic/chat', { 'replay-after': String(after), ...headers });
  });
  const messages = [...inbox.items];
  await client.disconnect();
  return { messages, receipt };
}

test('a subscriber with echo: false never receives its own messages, and receives everyone else\'s', async () => {
  const room = roomName('echo');
  const alice = await connect(wsUrl(room), { login: 'alice' });
  const bob = await connect(wsUrl(room), { login: 'bob' });
  const alicesView = alice.subscribe('/topic/chat', { echo: 'false' });
  const bobsView = bob.subscribe('/topic/chat');
  alice.publish('/topic/chat', 'alice 1');
  await bob.publishConfirmed('/topic/chat', 'bob 1');
  alice.publish('/topic/chat', 'alice 2');
  await bob.publishConfirmed('/topic/chat', 'bob 2');
  // Everyone gets a fan-out in the same order: once bob has seen his last, alice has too.
  await bobsView.atLeast(4);
  await alicesView.atLeast(2);
  assert.deepEqual(bobsView.bodies, ['alice 1', 'bob 1', 'alice 2', 'bob 2']);
  assert.deepEqual(alicesView.bodies, ['bob 1', 'bob 2']);
  await alice.disconnect();
  await bob.disconnect();
});

test('a STOMP resume from before the kept history says so on its first replayed MESSAGE and its RECEIPT; one from a kept id says nothing', async () => {
  const room = roomName('stomp');
  const ids = await publishTrimmed(room, TRIMMED);
  const lost = await resume(room, ids[0]);
  assert.equal(lost.messages.length, HISTORY_LIMIT);
  assert.equal(lost.messages[0].headers['replay-incomplete'], 'true');
  assert.equal(lost.messages[1].headers['replay-incomplete'], undefined);
  assert.equal(lost.receipt.headers['replay-incomplete'], 'true');
  const kept = await resume(room, ids[ids.length - 1 - HISTORY_LIMIT]);
  assert.deepEqual(kept.messages.map((m) => Number(m.headers['message-id'])), ids.slice(-HISTORY_LIMIT));
  assert.ok(kept.messages.every((m) => m.headers['replay-incomplete'] === undefined));
  assert.equal(kept.receipt.headers['replay-incomplete'], undefined);
});

test('a STOMP resume with nothing it receives replayed and no receipt is told on the first live MESSAGE', async () => {
  const room = roomName('owed');
  const alice = await connect(wsUrl(room));
  for (let n = 1; n < TRIMMED; n++) alice.publish('/topic/chat', `alice ${n}`);
  await alice.publishConfirmed('/topic/chat', `alice ${TRIMMED}`);
  // Every message kept is alice's own, which echo: false keeps from her: nothing is replayed.
  const view = alice.subscribe('/topic/chat', { 'replay-after': '0', echo: 'false' });
  // A confirmed frame after the SUBSCRIBE, on the same socket: the replay is done.
  await alice.publishConfirmed('/topic/elsewhere', 'sync');
  assert.equal(view.items.length, 0);
  const bob = await connect(wsUrl(room));
  await bob.publishConfirmed('/topic/chat', 'bob, live');
  await bob.publishConfirmed('/topic/chat', 'bob again');
  const [first, second] = await view.atLeast(2);
  assert.equal(first.body, 'bob, live');
  assert.equal(first.headers['replay-incomplete'], 'true');
  assert.equal(second.headers['replay-incomplete'], undefined);
  await alice.disconnect();
  await bob.disconnect();
});

test('an HTTP poll after a trimmed id answers "incomplete": true; after a kept id it does not', async () => {
  const room = roomName('poll');
  const ids = await publishTrimmed(room, TRIMMED);
  const lost = await request(url(room, { after: ids[0] }));
  assert.equal(lost.status, 200, lost.text);
  assert.equal(lost.json.incomplete, true);
  const kept = await request(url(room, { after: ids[ids.length - 1 - HISTORY_LIMIT] }));
  assert.equal(kept.json.incomplete, undefined, kept.text);
  assert.deepEqual(kept.json.messages.map((m) => m.id), ids.slice(-HISTORY_LIMIT));
});

test('an event stream resumed with a trimmed Last-Event-ID opens with an incomplete event before the replayed ones', async () => {
  const room = roomName('sse');
  const ids = await publishTrimmed(room, TRIMMED);
  const stream = await EventStream.open(url(room), { 'Last-Event-ID': String(ids[0]) });
  try {
    assert.equal(stream.status, 200, stream.text);
    const [first, ...replayed] = await stream.events.atLeast(1 + HISTORY_LIMIT);
    assert.equal(first.event, 'incomplete');
    assert.deepEqual(first.message, { incomplete: true });
    assert.deepEqual(replayed.map((event) => [event.event, Number(event.id)]), ids.slice(-HISTORY_LIMIT).map((id) => ['message', id]));
  } finally {
    await stream.close();
  }
});
