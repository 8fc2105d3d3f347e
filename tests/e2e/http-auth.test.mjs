// The HTTP rungs where tokens are required (STOMP_JWT_SECRET set), against the real build: the
// same rules as a STOMP CONNECT, with the token in `Authorization: Bearer`, in `?access_token=`
// (for EventSource, which cannot set headers), or a STOMP_USERS login as HTTP Basic. Tokens are
// minted here with node:crypto, as a backend would. Each test uses its own rooms.

import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { EventSource } from 'eventsource';
import { useServer } from './harness.mjs';
import { destinationUrl, EventStream, openEventSource, request } from './http.mjs';
import { connect } from './stomp.mjs';

const ISSUER = 'https://auth.example';
const AUDIENCE = 'stomp-rooms';
const SECRET = randomBytes(32).toString('base64url');

const server = useServer({
  vars: {
    STOMP_JWT_SECRET: SECRET,
    STOMP_USERS: JSON.stringify({ carol: 'carol-pass' }),
    ROOM_SETTINGS: JSON.stringify({ auth: { issuer: ISSUER, audience: AUDIENCE, leeway_s: 0 } }),
  },
});

// --- Minting tokens (HS256) -----------------------------------------------------------------

const b64url = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);
const claims = (sub, extra = {}) => ({ sub, iss: ISSUER, aud: AUDIENCE, iat: now(), exp: now() + 300, ...extra });

function hs256(payload, secret = SECRET) {
  const input = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

const bearer = (token) => ({ Authorization: `Bearer ${token}` });
const basic = (login, passcode) => ({ Authorization: `Basic ${Buffer.from(`${login}:${passcode}`).toString('base64')}` });

let roomCounter = 0;
const roomName = (name) => `http-auth-${name}-${process.pid}-${++roomCounter}`;
const url = (room, destination = '/topic/chat', query = {}) => destinationUrl(server.httpUrl, room, destination, query);

const post = (room, body, { destination = '/topic/chat', headers = {}, query } = {}) =>
  request(url(room, destination, query), { method: 'POST', headers: { 'Content-Type': 'text/plain', ...headers }, body });
const poll = (room, { destination = '/topic/chat', headers = {}, query } = {}) => request(url(room, destination, query), { headers });

/** A verified reader's view of the room's /topic/chat history. */
const history = async (room) => (await poll(room, { headers: bearer(hs256(claims('auditor'))) })).json.messages;

test('without a valid token a POST, poll or event stream gets 401 with WWW-Authenticate: Bearer and the reason, and publishes nothing', async () => {
  const room = roomName('refused');
  const cases = [
    ['POST, no token', () => post(room, 'x'), /this room requires a token/],
    ['POST, only a claimed ?login=', () => post(room, 'x', { query: { login: 'alice' } }), /this room requires a token/],
    ['POST, expired token', () => post(room, 'x', { headers: bearer(hs256(claims('x', { exp: now() - 60 }))) }), /token expired/],
    ['POST, another secret', () => post(room, 'x', { headers: bearer(hs256(claims('x'), 'not-the-secret')) }), /bad token signature/],
    ['POST, ?access_token= not a JWT', () => post(room, 'x', { query: { access_token: 'not-a-jwt' } }), /malformed token/],
    ['POST, wrong audience', () => post(room, 'x', { headers: bearer(hs256(claims('x', { aud: 'another-service' }))) }), /token audience/],
    ['POST, a rooms claim without this room', () => post(room, 'x', { headers: bearer(hs256(claims('x', { rooms: ['lobby'] }))) }),
      new RegExp(`token does not allow room ${room}`)],
    ['GET, no token', () => poll(room), /this room requires a token/],
    ['GET, expired ?access_token=', () => poll(room, { query: { access_token: hs256(claims('x', { exp: now() - 60 })) } }), /token expired/],
    ['event stream, no token', () => EventStream.open(url(room)), /this room requires a token/],
  ];
  for (const [name, send, reason] of cases) {
    const answer = await send();
    assert.equal(answer.status, 401, `${name}: ${answer.status} ${answer.text}`);
    assert.equal(answer.headers.get('www-authenticate'), 'Bearer', name);
    assert.match(answer.headers.get('content-type'), /^text\/plain/, name);
    assert.match(answer.text, /^authentication failed: /, name);
    assert.match(answer.text, reason, name);
  }
  assert.deepEqual(await history(room), [], 'nothing refused was published');
});

test('a token\'s sub is the verified sender of a POST (Authorization: Bearer or ?access_token=): STOMP subscribers and polls see sender = sub and sender-verified, never a claimed name', async () => {
  const room = roomName('verified');
  const listener = await connect(`${server.wsUrl}/rooms/${room}`, { connectHeaders: bearer(hs256(claims('listener'))) });
  const chat = listener.subscribe('/topic/chat');
  await listener.withReceipt((h) => listener.subscribe('/topic/sync', h));

  const fromAlice = await post(room, 'signed by alice', {
    headers: { ...bearer(hs256(claims('alice'))), 'X-Stomp-Sender': 'mallory' },
    query: { login: 'mallory' },
  });
  assert.equal(fromAlice.status, 201, fromAlice.text);
  const fromBob = await post(room, 'signed by bob', { query: { access_token: hs256(claims('bob')) } });
  assert.equal(fromBob.status, 201, fromBob.text);

  const [alice, bob] = await chat.atLeast(2);
  for (const [message, sub, answer] of [[alice, 'alice', fromAlice], [bob, 'bob', fromBob]]) {
    assert.equal(message.headers['message-id'], String(answer.json.id));
    assert.equal(message.headers.sender, sub);
    assert.equal(message.headers['sender-verified'], 'true');
    assert.equal(message.headers['sender-name'], undefined, 'a verified sender has no claimed name');
  }

  const polled = await history(room);
  assert.deepEqual(polled.map((m) => [m.id, m.sender, m.headers['sender-verified'], m.body]), [
    [fromAlice.json.id, 'alice', 'true', 'signed by alice'],
    [fromBob.json.id, 'bob', 'true', 'signed by bob'],
  ]);
  await listener.disconnect();
});

test('a read-only token (publish: []) gets 403 naming the rule for a POST, yet reads with ?access_token= (a poll, an EventSource); a token whose claims leave a topic out gets 403 for it', async () => {
  const room = roomName('grants');
  const readOnly = hs256(claims('reader', { publish: [] }));
  const refused = await post(room, 'may I?', { headers: bearer(readOnly) });
  assert.equal(refused.status, 403);
  assert.match(refused.headers.get('content-type'), /^text\/plain/);
  assert.match(refused.text, /\/topic\/chat is not allowed/);
  assert.match(refused.text, /publish claim allows nothing/);

  const { source, events } = await openEventSource(EventSource, url(room, '/topic/chat', { access_token: readOnly }));
  try {
    const writer = hs256(claims('writer', { publish: ['/topic/chat'] }));
    const published = await post(room, 'from the writer', { headers: bearer(writer) });
    assert.equal(published.status, 201, published.text);
    const [event] = await events.atLeast(1);
    assert.equal(event.lastEventId, String(published.json.id));
    assert.equal(JSON.parse(event.data).sender, 'writer');

    const read = await poll(room, { query: { access_token: readOnly } });
    assert.equal(read.status, 200, read.text);
    assert.deepEqual(read.json.messages.map((m) => m.body), ['from the writer']);

    const offList = await post(room, 'off the list', { destination: '/topic/news', headers: bearer(writer) });
    assert.equal(offList.status, 403);
    assert.match(offList.text, /\/topic\/news is not allowed/);
    assert.match(offList.text, /only \/topic\/chat/);
  } finally {
    source.close();
  }

  const narrow = hs256(claims('narrow', { subscribe: ['/topic/chat'] }));
  const secret = await poll(room, { destination: '/topic/secret', headers: bearer(narrow) });
  assert.equal(secret.status, 403);
  assert.match(secret.text, /\/topic\/secret is not allowed/);
  assert.match(secret.text, /subscribe claim allows only \/topic\/chat/);
  const secretStream = await EventStream.open(url(room, '/topic/secret', { access_token: narrow }));
  assert.equal(secretStream.status, 403, secretStream.text);
  assert.equal((await poll(room, { headers: bearer(narrow) })).status, 200, 'what the claim lists is readable');
});

test('HTTP Basic with a STOMP_USERS login publishes as that verified login; a wrong passcode gets 401', async () => {
  const room = roomName('basic');
  const published = await post(room, 'password login', { headers: basic('carol', 'carol-pass') });
  assert.equal(published.status, 201, published.text);
  const read = await poll(room, { headers: basic('carol', 'carol-pass') });
  assert.equal(read.status, 200, read.text);
  assert.deepEqual(read.json.messages.map((m) => [m.id, m.sender, m.headers['sender-verified']]), [[published.json.id, 'carol', 'true']]);

  const wrong = await post(room, 'guessing', { headers: basic('carol', 'wrong') });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.headers.get('www-authenticate'), 'Bearer');
  assert.match(wrong.text, /^authentication failed: /);
  assert.equal((await history(room)).length, 1, 'the refused POST published nothing');
});

test('/stats asks for the room\'s credentials like any request: 401 without a token, the counters with one', async () => {
  const room = roomName('stats');
  const stats = (headers = {}) => request(new URL(`/rooms/${room}/stats`, server.httpUrl).href, { headers });
  const refused = await stats();
  assert.equal(refused.status, 401);
  assert.match(refused.text, /requires a token/);
  const answer = await stats(bearer(hs256(claims('operator'))));
  assert.equal(answer.status, 200, answer.text);
  assert.equal(typeof answer.json.wakes, 'number');
  assert.equal(typeof answer.json.held.stored_bytes, 'number');
});

test('an event stream ends when its token expires, even with nothing to send', async () => {
  const room = roomName('expiry');
  const exp = now() + 3;
  const stream = await EventStream.open(url(room, '/topic/chat', { access_token: hs256(claims('viewer', { exp })) }));
  assert.equal(stream.status, 200);
  const ended = await Promise.race([stream.done.then(() => Date.now()), new Promise((r) => setTimeout(() => r(null), 10_000))]);
  assert.ok(ended, 'still open 10 s later');
  assert.ok(ended >= exp * 1000 - 50, `ended ${exp * 1000 - ended} ms before its token expired`);
  assert.ok(ended <= exp * 1000 + 2000, `ended ${ended - exp * 1000} ms after its token expired`);
});
