// Rooms spread over objects (README, "Rooms and gateway objects"): with `scaling.room_destinations`, a Spring
// app's /ws-stomp sockets land on gateway objects and each chat room (/sub/chat/room/{room}) is
// a room object of its own, holding its own messages; and a room past `members_per_object`
// sends its next sockets to gateways, whose members get every message, in order, as the room's
// own sockets do.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Client } from '@stomp/stompjs';
import SockJS from 'sockjs-client';
import { useServer } from './harness.mjs';
import { destinationUrl, request, roomStats, until } from './http.mjs';
import { connect, Inbox } from './stomp.mjs';

const server = useServer({
  vars: {
    ROOM_SETTINGS: JSON.stringify({
      endpoints: ['/ws-stomp'],
      destinations: {
        topics: ['/sub/'],
        // The seed app's controller: a SEND to /pub/chat/message goes to the room its JSON
        // body names (README, "Coming from Spring").
        application: { '/pub/': '/sub/', '/pub/chat/message': '/sub/chat/room/{roomId}' },
      },
      scaling: { room_destinations: ['/sub/chat/room/{room}'], members_per_object: 2 },
    }),
  },
});

const unique = (name) => `${name}-${process.pid}-${Date.now()}`;

/** A room's kept messages on a destination, over HTTP: their bodies, oldest first. */
async function history(room, destination) {
  const answer = await request(destinationUrl(server.httpUrl, room, destination));
  assert.equal(answer.status, 200, answer.text);
  return answer.json.messages.map((message) => message.body);
}

test('each chat room of a Spring endpoint is a room object of its own: one socket subscribed to two rooms gets both, and each room stores only its own messages', async () => {
  const [first, second] = [unique('r1'), unique('r2')];
  const listener = await connect(`${server.wsUrl}/ws-stomp`);
  const inFirst = listener.subscribe(`/sub/chat/room/${first}`);
  const inSecond = listener.subscribe(`/sub/chat/room/${second}`);
  // Receipts from both rooms: both subscriptions are in place (and stored) before anyone sends.
  await listener.withReceipt((h) => listener.subscribe(`/sub/chat/room/${first}`, { id: 'sync-1', ...h }));
  await listener.withReceipt((h) => listener.subscribe(`/sub/chat/room/${second}`, { id: 'sync-2', ...h }));

  const sender = await connect(`${server.wsUrl}/ws-stomp`);
  const say = (roomId, message) => sender.publishConfirmed('/pub/chat/message', JSON.stringify({ roomId, message }),
    { 'content-type': 'application/json' });
  await say(first, 'hello first');
  await say(second, 'hello second');
  await say(first, 'again first');

  const toFirst = await inFirst.atLeast(2);
  assert.deepEqual(toFirst.map((m) => JSON.parse(m.body).message), ['hello first', 'again first']);
  assert.ok(toFirst.every((m) => m.headers.destination === `/sub/chat/room/${first}`));
  const [toSecond] = await inSecond.atLeast(1);
  assert.equal(JSON.parse(toSecond.body).message, 'hello second');

  // Each room's object gave out its own ids and keeps only its own messages.
  assert.equal((await roomStats(server.httpUrl, first)).last_message_id, 2);
  assert.equal((await roomStats(server.httpUrl, second)).last_message_id, 1);
  const kept = async (room) => (await history(room, `/sub/chat/room/${room}`)).map((b) => JSON.parse(b).message);
  assert.deepEqual(await kept(first), ['hello first', 'again first']);
  assert.deepEqual(await kept(second), ['hello second']);
  assert.equal((await roomStats(server.httpUrl, 'ws-stomp')).last_message_id ?? 0, 0,
    'the endpoint\'s own room carried none of them');

  await listener.disconnect();
  await sender.disconnect();
});

test('a destination no template names stays in the endpoint\'s own room', async () => {
  const a = await connect(`${server.wsUrl}/ws-stomp`);
  const b = await connect(`${server.wsUrl}/ws-stomp`);
  const notices = a.subscribe('/sub/notice');
  await a.withReceipt((h) => a.subscribe('/sub/notice', { id: 'sync', ...h }));
  await b.publishConfirmed('/pub/notice', 'to everyone');
  const [notice] = await notices.atLeast(1);
  assert.equal(notice.body, 'to everyone');
  assert.deepEqual(await history('ws-stomp', '/sub/notice'), ['to everyone']);
  await a.disconnect();
  await b.disconnect();
});

test('a room with members_per_object 2 takes 5 sockets, 3 of them on a gateway, and each gets every message in order', async () => {
  const room = unique('big');
  const clients = [];
  const inboxes = [];
  for (let i = 0; i < 5; i += 1) {
    const client = await connect(`${server.wsUrl}/rooms/${room}`);
    inboxes.push(client.subscribe('/topic/chat'));
    await client.withReceipt((h) => client.subscribe('/topic/sync', h));
    clients.push(client);
  }
  const stats = await roomStats(server.httpUrl, room);
  assert.equal(stats.sockets, 2, 'the room\'s object holds members_per_object sockets');
  const members = Object.values(stats.members ?? {}).reduce((sum, n) => sum + n, 0);
  assert.equal(members, 3, `the other 3 are members on gateways: ${JSON.stringify(stats.members)}`);

  // From a socket of the room's own, and from one on a gateway.
  const sent = [];
  for (let i = 0; i < 10; i += 1) {
    const from = clients[i % 2 === 0 ? 0 : 4];
    sent.push(`message ${i}`);
    await from.publishConfirmed('/topic/chat', `message ${i}`);
  }
  for (const inbox of inboxes) {
    const got = await inbox.atLeast(sent.length);
    assert.deepEqual(got.map((m) => m.body), sent);
  }
  await until(async () => (await roomStats(server.httpUrl, room)).last_message_id === sent.length,
    'the room gave out one id per message');
  for (const client of clients) await client.disconnect();
});

test('a Spring tutorial\'s client, stomp.js over sockjs-client\'s websocket transport, chats through a gateway; SockJS over HTTP is refused saying why', async () => {
  const room = unique('sockjs');
  const sockjs = new Client({
    webSocketFactory: () => new SockJS(`${server.httpUrl}/ws-stomp`, null, { transports: ['websocket'] }),
    reconnectDelay: 0,
    heartbeatIncoming: 0,
    heartbeatOutgoing: 0,
  });
  const connected = new Promise((resolve, reject) => {
    sockjs.onConnect = resolve;
    sockjs.onStompError = (frame) => reject(new Error(`ERROR: ${frame.headers.message}`));
    sockjs.onWebSocketClose = (event) => reject(new Error(`closed before CONNECTED (${event.code})`));
  });
  sockjs.activate();
  await connected;
  const received = new Inbox('messages over SockJS');
  const subscribed = new Promise((resolve) => sockjs.watchForReceipt('sub', resolve));
  sockjs.subscribe(`/sub/chat/room/${room}`, (message) => received.push(message), { receipt: 'sub' });
  await subscribed;

  const plain = await connect(`${server.wsUrl}/ws-stomp`);
  await plain.publishConfirmed('/pub/chat/message', JSON.stringify({ roomId: room, message: 'through two gateways' }));
  const [message] = await received.atLeast(1);
  assert.equal(JSON.parse(message.body).message, 'through two gateways');
  assert.equal((await roomStats(server.httpUrl, room)).last_message_id, 1);

  const overHttp = await request(`${server.httpUrl}/ws-stomp/000/abcdefgh/xhr_streaming`, { method: 'POST' });
  assert.equal(overHttp.status, 404);
  assert.match(overHttp.text, /websocket transport only/);
  await sockjs.deactivate();
  await plain.disconnect();
});

test('a client cannot pose as a gateway or a room: the router sets the route header itself', async () => {
  const room = unique('posing');
  const posing = await request(`${server.httpUrl}/rooms/${room}/stats`, {
    headers: { 'x-stomp-rooms-route': `relay-to-room ${room}` },
  });
  assert.equal(posing.status, 200, 'the route read from the URL, not the header');
  assert.equal(posing.json.last_message_id, 0);
  const noUrl = await request(`${server.httpUrl}/relay-to-room/${room}`, { method: 'POST', body: 'x' });
  assert.equal(noUrl.status, 404);
});

test('after the room and its gateways sat idle long enough to be evicted (sockets kept open), members still chat', async () => {
  const room = unique('evicted');
  const destination = `/sub/chat/room/${room}`;
  const [a, b] = [await connect(`${server.wsUrl}/ws-stomp`), await connect(`${server.wsUrl}/ws-stomp`)];
  const toA = a.subscribe(destination);
  const toB = b.subscribe(destination);
  await a.withReceipt((h) => a.subscribe(destination, { id: 'sync', ...h }));
  await b.withReceipt((h) => b.subscribe(destination, { id: 'sync', ...h }));
  const before = await roomStats(server.httpUrl, room);
  // workerd evicts an object after 10 s without events; hibernatable sockets stay open.
  await new Promise((resolve) => setTimeout(resolve, 12_000));
  await b.publishConfirmed('/pub/chat/message', JSON.stringify({ roomId: room, message: 'after a nap' }));
  for (const inbox of [toA, toB]) {
    const [message] = await inbox.atLeast(1);
    assert.equal(JSON.parse(message.body).message, 'after a nap');
  }
  const after = await roomStats(server.httpUrl, room);
  assert.equal(after.wakes, before.wakes + 1, 'the room was evicted and woken again');
  assert.equal(Object.values(after.members).reduce((sum, n) => sum + n, 0), 2, 'it still knew its members');
  await a.disconnect();
  await b.disconnect();
});
