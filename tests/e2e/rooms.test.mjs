// Rooms speak STOMP to stock @stomp/stompjs clients: the real Worker build under wrangler dev.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { useServer } from './harness.mjs';
import { TestSocket } from './sockets.mjs';
import { connect, sleep } from './stomp.mjs';

const server = useServer();
let roomCounter = 0;
/** A fresh room per test, so tests sharing the server do not hear each other. */
const freshRoom = (name) => `${server.wsUrl}/rooms/${name}-${process.pid}-${++roomCounter}`;

test('connects with each of STOMP 1.0, 1.1 and 1.2', async () => {
  const url = freshRoom('versions');
  for (const version of ['1.0', '1.1', '1.2']) {
    const client = await connect(url, { versions: [version] });
    assert.equal(client.client.connectedVersion, version);
    assert.equal(client.connectedFrame.headers.version, version);
    assert.match(client.connectedFrame.headers.server, /^stomp-rooms\//);
    assert.match(client.connectedFrame.headers.session, /^s\d+$/);
    await client.disconnect();
  }
});

test('three clients publish and subscribe with exact delivery counts', async () => {
  const url = freshRoom('chat');
  const clients = await Promise.all([1, 2, 3].map(() => connect(url)));
  const inboxes = clients.map((c) => c.subscribe('/topic/chat'));
  const others = clients.map((c) => c.subscribe('/topic/other'));
  await Promise.all(clients.map((c) => c.withReceipt((h) => c.subscribe('/topic/barrier', h))));
  for (const [i, client] of clients.entries()) {
    await client.publishConfirmed('/topic/chat', `hello from ${i}`, { 'content-type': 'text/plain', 'x-sender': `c${i}` });
  }
  for (const inbox of inboxes) {
    const messages = await inbox.atLeast(3);
    assert.deepEqual(messages.map((m) => m.body), ['hello from 0', 'hello from 1', 'hello from 2']);
    assert.equal(messages[0].headers['content-type'], 'text/plain');
    assert.equal(messages[1].headers['x-sender'], 'c1');
    assert.equal(messages[2].headers.destination, '/topic/chat');
    const ids = messages.map((m) => Number(m.headers['message-id']));
    assert.ok(ids[0] < ids[1] && ids[1] < ids[2], `ids increase: ${ids}`);
  }
  // A round trip after the publishes: nothing more arrived, and nothing on /topic/other.
  await clients[0].publishConfirmed('/topic/barrier', 'end');
  await sleep(100);
  for (const inbox of inboxes) assert.equal(inbox.items.length, 3);
  for (const inbox of others) assert.equal(inbox.items.length, 0);
  await Promise.all(clients.map((c) => c.disconnect()));
});

test('rooms are isolated', async () => {
  const [roomA, roomB] = [freshRoom('isolated-a'), freshRoom('isolated-b')];
  const [a1, a2, b1] = await Promise.all([connect(roomA), connect(roomA), connect(roomB)]);
  const a2Inbox = a2.subscribe('/topic/chat');
  const b1Inbox = b1.subscribe('/topic/chat');
  await b1.withReceipt((h) => b1.subscribe('/topic/sync', h));
  await a2.withReceipt((h) => a2.subscribe('/topic/sync', h));
  await a1.publishConfirmed('/topic/chat', 'only for room a');
  await a2Inbox.atLeast(1);
  await b1.publishConfirmed('/topic/chat', 'room b');
  await b1Inbox.atLeast(1);
  assert.deepEqual(b1Inbox.bodies, ['room b']);
  assert.deepEqual(a2Inbox.bodies, ['only for room a']);
  await Promise.all([a1, a2, b1].map((c) => c.disconnect()));
});

test('queue messages go to one competing consumer each, round-robin', async () => {
  const url = freshRoom('queue');
  const [producer, c1, c2] = await Promise.all([connect(url), connect(url), connect(url)]);
  const q1 = c1.subscribe('/queue/jobs');
  const q2 = c2.subscribe('/queue/jobs');
  await c1.withReceipt((h) => c1.subscribe('/topic/sync', h));
  await c2.withReceipt((h) => c2.subscribe('/topic/sync', h));
  for (let n = 0; n < 6; n++) await producer.publishConfirmed('/queue/jobs', `job ${n}`);
  await q1.atLeast(3);
  await q2.atLeast(3);
  await producer.publishConfirmed('/topic/sync', 'end');
  assert.equal(q1.items.length + q2.items.length, 6);
  assert.deepEqual([...q1.bodies, ...q2.bodies].sort(), ['job 0', 'job 1', 'job 2', 'job 3', 'job 4', 'job 5']);
  await Promise.all([producer, c1, c2].map((c) => c.disconnect()));
});

test('/user destinations in an open room reach a session, never a claimed login', async () => {
  const url = freshRoom('private');
  const [alice, bob, impostor] = await Promise.all([
    connect(url, { login: 'alice' }), connect(url, { login: 'bob' }), connect(url, { login: 'bob' }),
  ]);
  const inboxes = [bob, impostor].map((c) => c.subscribe('/user/queue/inbox'));
  await Promise.all([bob, impostor].map((c) => c.withReceipt((h) => c.subscribe('/topic/sync', h))));
  const bobSession = bob.connectedFrame.headers.session;
  await alice.publishConfirmed(`/user/${bobSession}/queue/inbox`, 'psst');
  await alice.publishConfirmed('/user/bob/queue/inbox', 'to a claimed name');
  const [toBob] = await inboxes[0].atLeast(1);
  assert.equal(toBob.body, 'psst');
  assert.equal(toBob.headers.destination, '/user/queue/inbox');
  assert.equal(toBob.headers.sender, alice.connectedFrame.headers.session);
  assert.equal(toBob.headers['sender-name'], 'alice');
  await alice.publishConfirmed('/topic/sync', 'end');
  assert.equal(inboxes[0].items.length, 1, 'nothing reached the claimed name');
  assert.equal(inboxes[1].items.length, 0, 'the other "bob" heard nothing');
  await Promise.all([alice, bob, impostor].map((c) => c.disconnect()));
});

test('receipts, including the DISCONNECT receipt of deactivate()', async () => {
  const url = freshRoom('receipts');
  const client = await connect(url);
  const subscribed = await client.withReceipt((h) => client.subscribe('/topic/x', h));
  assert.equal(subscribed.command, 'RECEIPT');
  const sent = await client.publishConfirmed('/topic/x', 'hi');
  assert.equal(sent.command, 'RECEIPT');
  const receipt = await client.disconnect();
  assert.ok(receipt, 'deactivate() got its DISCONNECT receipt instead of giving up');
  assert.equal(receipt.command, 'RECEIPT');
  assert.match(receipt.headers['receipt-id'], /^close-/);
});

test('client acks, and NACK redelivers to another consumer', async () => {
  const url = freshRoom('acks');
  const [producer, c1, c2] = await Promise.all([connect(url), connect(url), connect(url)]);
  const first = c1.subscribe('/queue/work', { ack: 'client-individual' });
  await c1.withReceipt((h) => c1.subscribe('/topic/sync', h));
  await producer.publishConfirmed('/queue/work', 'job');
  const [message] = await first.atLeast(1);
  assert.ok(message.headers.ack, 'STOMP 1.2 MESSAGE carries an ack header');
  const second = c2.subscribe('/queue/work', { ack: 'client' });
  await c2.withReceipt((h) => c2.subscribe('/topic/sync', h));
  message.nack();
  const [redelivered] = await second.atLeast(1);
  assert.equal(redelivered.body, 'job');
  assert.equal(redelivered.headers.redelivered, 'true');
  assert.equal(redelivered.headers['message-id'], message.headers['message-id']);
  await c2.withReceipt((h) => redelivered.ack(h));
  // Acknowledged: a new consumer after both leave gets nothing.
  await Promise.all([c1.disconnect(), c2.disconnect()]);
  const c3 = await connect(url);
  const third = c3.subscribe('/queue/work');
  await c3.withReceipt((h) => c3.subscribe('/topic/sync', h));
  await producer.publishConfirmed('/topic/sync', 'end');
  assert.equal(third.items.length, 0);
  await Promise.all([producer.disconnect(), c3.disconnect()]);
});

test('a committed transaction is delivered and an aborted one is not', async () => {
  const url = freshRoom('transactions');
  const [sender, receiver] = await Promise.all([connect(url), connect(url)]);
  const inbox = receiver.subscribe('/topic/tx');
  await receiver.withReceipt((h) => receiver.subscribe('/topic/sync', h));
  const committed = sender.client.begin();
  sender.client.publish({ destination: '/topic/tx', body: 'one', headers: { transaction: committed.id } });
  sender.client.publish({ destination: '/topic/tx', body: 'two', headers: { transaction: committed.id } });
  await sender.publishConfirmed('/topic/sync', 'staged');
  assert.equal(inbox.items.length, 0, 'nothing before COMMIT');
  committed.commit();
  assert.deepEqual((await inbox.atLeast(2)).map((m) => m.body), ['one', 'two']);
  const aborted = sender.client.begin();
  sender.client.publish({ destination: '/topic/tx', body: 'never', headers: { transaction: aborted.id } });
  aborted.abort();
  await sender.publishConfirmed('/topic/sync', 'end');
  await sleep(100);
  assert.deepEqual(inbox.bodies, ['one', 'two']);
  await Promise.all([sender.disconnect(), receiver.disconnect()]);
});

test('binary bodies travel in binary messages, text in text', async () => {
  const url = freshRoom('binary');
  const [sender, receiver] = await Promise.all([connect(url), connect(url)]);
  const raw = await TestSocket.open(url, ['v12.stomp']);
  raw.send('CONNECT\naccept-version:1.2\nhost:x\n\n\0');
  await raw.nth(0);
  raw.send('SUBSCRIBE\nid:0\ndestination:/topic/bin\nreceipt:ok\n\n\0');
  await raw.nth(1);
  const inbox = receiver.subscribe('/topic/bin');
  await receiver.withReceipt((h) => receiver.subscribe('/topic/sync', h));
  sender.client.publish({ destination: '/topic/bin', binaryBody: new Uint8Array([0, 255, 1, 254]) });
  await sender.publishConfirmed('/topic/bin', 'plain text');
  const [binary, text] = await inbox.atLeast(2);
  assert.deepEqual([...binary.binaryBody], [0, 255, 1, 254]);
  assert.equal(text.body, 'plain text');
  const [rawBinary, rawText] = [await raw.nth(2), await raw.nth(3)];
  assert.ok(Buffer.isBuffer(rawBinary), 'binary body arrived in a binary WebSocket message');
  assert.equal(typeof rawText, 'string', 'text body arrived in a text WebSocket message');
  await raw.close();
  await Promise.all([sender.disconnect(), receiver.disconnect()]);
});

test('bad frames get an ERROR and close only that connection', async () => {
  const url = freshRoom('errors');
  const [watcher, talker] = await Promise.all([connect(url), connect(url)]);
  const inbox = watcher.subscribe('/topic/chat');
  await watcher.withReceipt((h) => watcher.subscribe('/topic/sync', h));
  await talker.publishConfirmed('/topic/chat', 'before');
  const cases = [
    ['malformed frame', 'SEND\ndestination\n\n\0', /malformed header/],
    ['unknown command', 'HELLO\n\n\0', /unknown command/],
    ['missing destination', 'SEND\nreceipt:7\n\nbody\0', /missing destination header/],
    ['oversized frame', `SEND\ndestination:/topic/chat\ncontent-length:${2 * 1024 * 1024}\n\n`, /body too large/],
  ];
  for (const [name, frame, message] of cases) {
    const raw = await TestSocket.open(url, ['v12.stomp']);
    raw.send('CONNECT\naccept-version:1.2\nhost:x\n\n\0');
    assert.match(await raw.nth(0), /^CONNECTED/);
    raw.send(frame);
    const error = await raw.nth(1);
    assert.match(error, /^ERROR\n/, name);
    assert.match(error, message, name);
    if (name === 'missing destination') assert.match(error, /receipt-id:7/);
    const closed = await raw.closed;
    assert.equal(closed.code, 1002, `${name} closes the socket`);
  }
  // The room kept serving everyone else, and nothing accepted was lost.
  await talker.publishConfirmed('/topic/chat', 'after');
  assert.deepEqual((await inbox.atLeast(2)).map((m) => m.body), ['before', 'after']);
  assert.ok(watcher.connected && talker.connected);
  await Promise.all([watcher.disconnect(), talker.disconnect()]);
});

test('presence lists members, then joins and leaves', async () => {
  const url = freshRoom('presence');
  const alice = await connect(url, { login: 'alice' });
  const presence = alice.subscribe('/presence');
  const [snapshot] = await presence.atLeast(1);
  const members = JSON.parse(snapshot.body);
  assert.equal(members.type, 'members');
  assert.deepEqual(members.members.map((m) => m.login), ['alice']);
  const bob = await connect(url, { login: 'bob' });
  const [, joined] = await presence.atLeast(2);
  assert.deepEqual(JSON.parse(joined.body), { type: 'join', member: { session: bob.connectedFrame.headers.session, login: 'bob', verified: false } });
  await bob.disconnect();
  const [, , left] = await presence.atLeast(3);
  assert.deepEqual(JSON.parse(left.body), { type: 'leave', member: { session: bob.connectedFrame.headers.session, login: 'bob', verified: false } });
  await alice.disconnect();
});

test('a subscription can replay the last messages of a topic', async () => {
  const url = freshRoom('replay');
  const writer = await connect(url);
  for (let n = 1; n <= 5; n++) await writer.publishConfirmed('/topic/log', `m${n}`);
  const reader = await connect(url);
  const inbox = reader.subscribe('/topic/log', { 'replay-last': '3' });
  await reader.withReceipt((h) => reader.subscribe('/topic/sync', h));
  await writer.publishConfirmed('/topic/log', 'm6');
  const messages = await inbox.atLeast(4);
  assert.deepEqual(messages.map((m) => m.body), ['m3', 'm4', 'm5', 'm6']);
  assert.deepEqual(messages.map((m) => m.headers.replayed), ['true', 'true', 'true', undefined]);
  await Promise.all([writer.disconnect(), reader.disconnect()]);
});
