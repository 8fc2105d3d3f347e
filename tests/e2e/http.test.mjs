// The rooms over plain HTTP, the lower rungs of the ladder (POST to publish, short poll, long
// poll, server-sent events), against the real build in an open room: what goes in over HTTP
// comes out over STOMP and the other way round, with the same ids, and every refusal says why.
// The caps are set small so they can be reached: 2 event streams and 2 waiting polls per room,
// waits capped at 5 s, a keep-alive comment every second, bodies of at most 4 KiB; pages from
// https://app.example may use the rooms cross-origin, no other. Each test uses its own rooms.
//
// EventSource is the `eventsource` package (Node 22 has none of its own); the resume test reads
// the stream by hand (http.mjs) to break it off exactly when it wants.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventSource } from 'eventsource';
import { useServer } from './harness.mjs';
import { destinationUrl, EventStream, openEventSource, request, roomStats, until } from './http.mjs';
import { connect, sleep } from './stomp.mjs';

const MAX_STREAMS = 2;
const MAX_WAITING_POLLS = 2;
const MAX_WAIT_S = 5;
const KEEP_ALIVE_S = 1;
const MAX_BODY_BYTES = 4096;
const ALLOWED_ORIGIN = 'https://app.example';

const server = useServer({
  vars: {
    ROOM_SETTINGS: JSON.stringify({
      http: { max_streams: MAX_STREAMS, max_waiting_polls: MAX_WAITING_POLLS, max_wait_s: MAX_WAIT_S, keep_alive_s: KEEP_ALIVE_S },
      limits: { max_body_bytes: MAX_BODY_BYTES },
      allowed_origins: [ALLOWED_ORIGIN],
    }),
  },
});

let roomCounter = 0;
const roomName = (name) => `http-${name}-${process.pid}-${++roomCounter}`;
const wsUrl = (room) => `${server.wsUrl}/rooms/${room}`;
const url = (room, destination = '/topic/chat', query = {}) => destinationUrl(server.httpUrl, room, destination, query);
const stats = (room) => roomStats(server.httpUrl, room);

/** POSTs `body` to a destination of `room` (text/plain unless `headers` say otherwise). */
const post = (room, body, { destination = '/topic/chat', headers = {}, query } = {}) =>
  request(url(room, destination, query), { method: 'POST', headers: { 'Content-Type': 'text/plain', ...headers }, body });

/** A GET of /topic/chat (or `destination`) with `query`, answered as JSON unless told otherwise. */
const poll = (room, query = {}, { destination = '/topic/chat', headers = {} } = {}) =>
  request(url(room, destination, query), { headers });

/** POSTs each body in turn; resolves with their ids. */
async function publishAll(room, bodies, options) {
  const ids = [];
  for (const body of bodies) {
    const answer = await post(room, body, options);
    assert.equal(answer.status, 201, answer.text);
    ids.push(answer.json.id);
  }
  return ids;
}

const bodiesOf = (answer) => answer.json.messages.map((message) => message.body);

/** Waits until the room holds `n` waiting long polls. */
const pollsWaiting = (room, n) =>
  until(async () => (await stats(room)).open_requests.waiting_polls === n, `${n} waiting polls in ${room}`);

// --- Publishing with a POST -----------------------------------------------------------------

test('a POST reaches STOMP subscribers as a MESSAGE: its Content-Type kept, X-Stomp-* headers carried, sender "http" named by ?login=, and the 201 id is the message-id', async () => {
  const room = roomName('post');
  const client = await connect(wsUrl(room));
  const chat = client.subscribe('/topic/chat');
  await client.withReceipt((h) => client.subscribe('/topic/sync', h));

  const answer = await post(room, 'hello over HTTP', {
    query: { login: 'webhook' },
    headers: {
      'Content-Type': 'text/markdown; charset=utf-8',
      'X-Stomp-Priority': 'high',
      'X-Stomp-Trace-Id': 'trace-42',
      // What the room stamps itself is never taken from a request.
      'X-Stomp-Sender': 'mallory',
      'X-Stomp-Sender-Name': 'mallory',
      'X-Stomp-Sender-Verified': 'true',
      'X-Stomp-Timestamp': '1',
      'X-Stomp-Message-Id': '999999',
    },
  });
  assert.equal(answer.status, 201, answer.text);
  assert.match(answer.headers.get('content-type'), /^application\/json/);
  assert.equal(typeof answer.json.id, 'number');
  assert.deepEqual(answer.json, { id: answer.json.id, destination: '/topic/chat' });

  const [message] = await chat.atLeast(1);
  assert.equal(message.body, 'hello over HTTP');
  assert.equal(message.headers['message-id'], String(answer.json.id));
  assert.equal(message.headers.destination, '/topic/chat');
  assert.equal(message.headers['content-type'], 'text/markdown; charset=utf-8');
  assert.equal(message.headers.priority, 'high');
  assert.equal(message.headers['trace-id'], 'trace-42');
  assert.equal(message.headers.sender, 'http');
  assert.equal(message.headers['sender-name'], 'webhook');
  assert.equal(message.headers['sender-verified'], undefined);
  assert.ok(Math.abs(Number(message.headers.timestamp) - Date.now()) < 60_000,
    `the room's own timestamp, not the request's: ${message.headers.timestamp}`);

  // Without ?login= the sender is plain "http", with no name; ids keep increasing.
  const anonymous = await post(room, 'no name given');
  assert.equal(anonymous.status, 201, anonymous.text);
  const [, second] = await chat.atLeast(2);
  assert.equal(second.headers['message-id'], String(anonymous.json.id));
  assert.ok(anonymous.json.id > answer.json.id);
  assert.equal(second.headers.sender, 'http');
  assert.equal(second.headers['sender-name'], undefined);
  await client.disconnect();
});

test('a POST to /queue/{name} reaches a queue consumer, and one to /user/{session}/{rest} that session\'s /user/{rest}', async () => {
  const room = roomName('post-queue-user');
  const worker = await connect(wsUrl(room));
  const jobs = worker.subscribe('/queue/jobs');
  const inbox = worker.subscribe('/user/queue/inbox');
  await worker.withReceipt((h) => worker.subscribe('/topic/sync', h));

  const queued = await post(room, 'job 1', { destination: '/queue/jobs' });
  assert.equal(queued.status, 201, queued.text);
  assert.deepEqual(queued.json, { id: queued.json.id, destination: '/queue/jobs' });
  const [job] = await jobs.atLeast(1);
  assert.equal(job.body, 'job 1');
  assert.equal(job.headers['message-id'], String(queued.json.id));
  assert.equal(job.headers.sender, 'http');

  const session = worker.connectedFrame.headers.session;
  const whisper = await post(room, 'psst', { destination: `/user/${session}/queue/inbox` });
  assert.equal(whisper.status, 201, whisper.text);
  const [privately] = await inbox.atLeast(1);
  assert.equal(privately.body, 'psst');
  assert.equal(privately.headers.sender, 'http');
  await worker.disconnect();
});

// --- Short polls ----------------------------------------------------------------------------

test('a STOMP SEND comes back from a short poll with the same id, headers, sender, timestamp and body', async () => {
  const room = roomName('send-poll');
  const listener = await connect(wsUrl(room));
  const chat = listener.subscribe('/topic/chat');
  await listener.withReceipt((h) => listener.subscribe('/topic/sync', h));
  const alice = await connect(wsUrl(room), { login: 'alice' });
  await alice.publishConfirmed('/topic/chat', 'from stomp.js', { 'content-type': 'text/plain', mood: 'cheerful' });
  const [sent] = await chat.atLeast(1);
  const id = Number(sent.headers['message-id']);

  const answer = await poll(room);
  assert.equal(answer.status, 200, answer.text);
  assert.match(answer.headers.get('content-type'), /^application\/json/);
  assert.equal(answer.headers.get('cache-control'), 'no-store');
  assert.equal(answer.json.next_after, id);
  assert.equal(answer.json.messages.length, 1);
  const [message] = answer.json.messages;
  assert.equal(message.id, id);
  assert.equal(message.destination, '/topic/chat');
  assert.equal(message.body, 'from stomp.js');
  assert.equal(message.body_base64, undefined);
  assert.equal(message.sender, alice.connectedFrame.headers.session, 'an unverified sender is its session id');
  assert.equal(message.sender, sent.headers.sender);
  assert.equal(message.timestamp, Number(sent.headers.timestamp));
  for (const name of ['sender', 'sender-name', 'timestamp', 'content-type', 'mood']) {
    assert.equal(message.headers[name], sent.headers[name], `header ${name}`);
  }
  assert.equal(message.headers['sender-name'], 'alice');
  for (const [name, value] of Object.entries(message.headers)) {
    assert.equal(value, sent.headers[name], `header ${name} is as the MESSAGE has it`);
  }
  await Promise.all([listener.disconnect(), alice.disconnect()]);
});

test('short polls: ?after= gives exactly the later messages in order, ?last=2 the last two, and following next_after misses nothing and repeats nothing', async () => {
  const room = roomName('short-poll');
  const ids = await publishAll(room, ['one', 'two', 'three', 'four', 'five']);
  assert.deepEqual([...ids].sort((a, b) => a - b), ids, 'ids increase');

  const after = await poll(room, { after: ids[1] });
  assert.equal(after.status, 200, after.text);
  assert.deepEqual(after.json.messages.map((m) => [m.id, m.body]), [[ids[2], 'three'], [ids[3], 'four'], [ids[4], 'five']]);
  assert.equal(after.json.next_after, ids[4]);

  const last = await poll(room, { last: 2 });
  assert.deepEqual(last.json.messages.map((m) => [m.id, m.body]), [[ids[3], 'four'], [ids[4], 'five']]);
  assert.equal(last.json.next_after, ids[4]);

  assert.deepEqual(bodiesOf(await poll(room)), ['one', 'two', 'three', 'four', 'five'], 'neither: the whole history');
  assert.deepEqual((await poll(room, { after: ids[4] })).json, { messages: [], next_after: ids[4] });
  // ?last=0: nothing, and where "now" is.
  const now = await poll(room, { last: 0 });
  assert.deepEqual(now.json, { messages: [], next_after: ids[4] });

  // A poller following next_after, while others publish here and on another topic (whose ids
  // move next_after on past messages this topic never had).
  let cursor = now.json.next_after;
  const seen = [];
  const published = [];
  const pollOnce = async () => {
    const answer = await poll(room, { after: cursor });
    assert.equal(answer.status, 200, answer.text);
    assert.ok(answer.json.next_after >= cursor, `next_after never goes back: ${answer.json.next_after} < ${cursor}`);
    seen.push(...bodiesOf(answer));
    cursor = answer.json.next_after;
    return answer.json.messages.length;
  };
  for (const batch of [['a1', 'a2'], [], ['b1'], ['c1', 'c2', 'c3']]) {
    await publishAll(room, batch);
    published.push(...batch);
    await publishAll(room, [`elsewhere after ${batch.length}`], { destination: '/topic/other' });
    assert.equal(await pollOnce(), batch.length);
    assert.equal(await pollOnce(), 0, 'polling again at once finds nothing new');
  }
  assert.deepEqual(seen, published);
});

// --- Long polls -----------------------------------------------------------------------------

test('a long poll waiting when a message is published answers at once with that message; one after stored messages does not wait', async () => {
  const room = roomName('long-poll');
  const publisher = await connect(wsUrl(room), { login: 'alice' });
  await publisher.publishConfirmed('/topic/chat', 'before');
  const cursor = (await poll(room, { last: 0 })).json.next_after;

  const started = Date.now();
  const waiting = poll(room, { after: cursor, wait: MAX_WAIT_S });
  await pollsWaiting(room, 1);
  const publishedAt = Date.now();
  await publisher.publishConfirmed('/topic/chat', 'during', { 'content-type': 'text/plain' });
  const answer = await waiting;
  const answeredAt = Date.now();
  assert.equal(answer.status, 200, answer.text);
  assert.equal(answer.headers.get('cache-control'), 'no-store');
  assert.deepEqual(bodiesOf(answer), ['during']);
  const [message] = answer.json.messages;
  assert.ok(message.id > cursor);
  assert.equal(message.sender, publisher.connectedFrame.headers.session);
  assert.equal(message.headers['content-type'], 'text/plain');
  assert.equal(answer.json.next_after, message.id);
  assert.ok(answeredAt - publishedAt < 2000, `answered ${answeredAt - publishedAt} ms after the publish`);
  assert.ok(answeredAt - started < MAX_WAIT_S * 1000 - 1000, `the poll took ${answeredAt - started} ms of its ${MAX_WAIT_S} s`);
  assert.equal((await stats(room)).open_requests.waiting_polls, 0, 'an answered poll is no longer held');

  const ready = await poll(room, { after: 0, wait: MAX_WAIT_S });
  assert.deepEqual(bodiesOf(ready), ['before', 'during']);
  assert.ok(ready.ms < 2000, `messages were there: no wait, but it took ${ready.ms} ms`);
  await publisher.disconnect();
});

test('a long poll with nothing published on its topic answers {"messages": [], "next_after": …} when its wait (capped at http.max_wait_s) runs out', async () => {
  const room = roomName('long-poll-empty');
  const [id] = await publishAll(room, ['only']);
  const waiting = poll(room, { after: id, wait: 30 }); // more than max_wait_s
  await pollsWaiting(room, 1);
  // A message on another topic does not answer it, but moves next_after on.
  const [elsewhere] = await publishAll(room, ['elsewhere'], { destination: '/topic/other' });
  const answer = await waiting;
  assert.equal(answer.status, 200, answer.text);
  assert.equal(answer.headers.get('cache-control'), 'no-store');
  assert.deepEqual(answer.json, { messages: [], next_after: elsewhere });
  assert.ok(answer.ms >= MAX_WAIT_S * 1000 - 250, `answered after ${answer.ms} ms, before the wait ran out`);
  assert.ok(answer.ms < MAX_WAIT_S * 1000 + 3000, `answered after ${answer.ms} ms: wait=30 was not capped at ${MAX_WAIT_S} s`);
  assert.equal((await stats(room)).open_requests.waiting_polls, 0);
});

// --- Server-sent events ---------------------------------------------------------------------

test('an EventSource (the eventsource package) gets each message as an event whose lastEventId is the message id and whose data is the message JSON', async () => {
  const room = roomName('eventsource');
  await publishAll(room, ['before the stream']); // no ?last= nor ?after=: live only
  const { source, events } = await openEventSource(EventSource, url(room));
  try {
    assert.equal(source.readyState, EventSource.OPEN);
    const first = await post(room, 'first', { query: { login: 'sse-poster' }, headers: { 'X-Stomp-Kind': 'greeting' } });
    const second = await post(room, 'second');
    const received = await events.atLeast(2);
    assert.deepEqual(received.map((event) => event.lastEventId), [String(first.json.id), String(second.json.id)],
      'ids are the message ids, and the message before the stream opened is not sent');
    assert.deepEqual(received.map((event) => event.type), ['message', 'message']);
    const data = JSON.parse(received[0].data);
    assert.equal(data.id, first.json.id);
    assert.equal(data.destination, '/topic/chat');
    assert.equal(data.body, 'first');
    assert.equal(data.sender, 'http');
    assert.equal(typeof data.timestamp, 'number');
    assert.equal(data.headers['sender-name'], 'sse-poster');
    assert.equal(data.headers.kind, 'greeting');
    assert.equal(data.headers['content-type'], 'text/plain');
    // The same object a poll returns.
    const polled = await poll(room, { after: first.json.id - 1 });
    assert.deepEqual(polled.json.messages[0], data);
  } finally {
    source.close();
  }
});

test('a real EventSource whose connection breaks reconnects by itself with Last-Event-ID and misses nothing, repeats nothing', async () => {
  const room = roomName('es-resume');
  // Each connection the EventSource makes, with a way to break it as a network would.
  const connections = [];
  const breakable = async (input, init) => {
    const response = await fetch(input, init);
    const reader = response.body.getReader();
    let cut;
    const body = new ReadableStream({
      start(controller) {
        cut = () => {
          controller.error(new TypeError('network connection lost'));
          reader.cancel().catch(() => {});
        };
      },
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      },
    });
    connections.push({ lastEventId: new Headers(init?.headers).get('last-event-id'), cut });
    return new Response(body, { status: response.status, headers: response.headers });
  };
  const { source, events } = await openEventSource(
    class extends EventSource { constructor(address) { super(address, { fetch: breakable }); } },
    url(room),
  );
  try {
    const before = await publishAll(room, ['a', 'b', 'c']);
    await events.atLeast(3);
    connections[0].cut();
    const meanwhile = await publishAll(room, ['d', 'e']);
    await until(() => connections.length === 2 && source.readyState === EventSource.OPEN,
      'the EventSource to reconnect', 10_000);
    assert.equal(connections[1].lastEventId, String(before[2]), 'it resumed after the last event it had');
    const later = await publishAll(room, ['f']);
    const received = await events.atLeast(6);
    assert.deepEqual(received.map((event) => JSON.parse(event.data).body), ['a', 'b', 'c', 'd', 'e', 'f']);
    assert.deepEqual(received.map((event) => Number(event.lastEventId)), [...before, ...meanwhile, ...later]);
    await sleep(300);
    assert.equal(events.items.length, 6, 'no event twice');
  } finally {
    source.close();
  }
});

test('an event stream broken off and resumed with Last-Event-ID misses nothing and repeats nothing of what was published meanwhile', async () => {
  const room = roomName('sse-resume');
  const first = await EventStream.open(url(room));
  assert.equal(first.status, 200, first.text);
  assert.match(first.headers.get('content-type'), /^text\/event-stream/);
  assert.equal(first.headers.get('cache-control'), 'no-cache');
  const [opening] = await first.blocks.atLeast(1);
  assert.equal(opening, 'retry: 2000', 'a stream starts by telling EventSource to retry after 2 s');

  const ids = await publishAll(room, ['m1', 'm2']);
  const before = await first.events.atLeast(2);
  assert.deepEqual(before.map((event) => event.id), ids.map(String));
  assert.deepEqual(before.map((event) => event.event), ['message', 'message']);
  await first.close();

  // Published while no stream is open.
  ids.push(...await publishAll(room, ['m3', 'm4']));
  const resumed = await EventStream.open(url(room), { 'Last-Event-ID': before.at(-1).id });
  assert.equal(resumed.status, 200, resumed.text);
  await resumed.events.atLeast(2);
  ids.push(...await publishAll(room, ['m5']));
  const after = await resumed.events.atLeast(3);
  await sleep(300);
  try {
    const all = [...before, ...resumed.events.items];
    assert.deepEqual(all.map((event) => event.message.body), ['m1', 'm2', 'm3', 'm4', 'm5']);
    assert.deepEqual(all.map((event) => Number(event.id)), ids);
    assert.deepEqual(after.map((event) => event.message.id), ids.slice(2));
  } finally {
    await resumed.close();
  }
});

test('an event stream starts where asked: ?last=n with the last n, ?after= after an id, Last-Event-ID before either (an EventSource reconnects to its first address with it); neither: live only', async () => {
  const cases = [
    { name: 'last', query: () => ({ last: 2 }), headers: () => ({}), expected: ['b', 'c'] },
    { name: 'after', query: (ids) => ({ after: ids[0] }), headers: () => ({}), expected: ['b', 'c'] },
    { name: 'resume-after', query: (ids) => ({ after: ids[0] }), headers: (ids) => ({ 'Last-Event-ID': String(ids[1]) }), expected: ['c'] },
    { name: 'resume-last', query: () => ({ last: 1 }), headers: (ids) => ({ 'Last-Event-ID': String(ids[0]) }), expected: ['b', 'c'] },
    { name: 'live', query: () => ({}), headers: () => ({}), expected: [] },
  ];
  for (const { name, query, headers, expected } of cases) {
    // One room each, so each case starts with the room's stream places free.
    const room = roomName(`sse-${name}`);
    const ids = await publishAll(room, ['a', 'b', 'c']);
    const stream = await EventStream.open(url(room, '/topic/chat', query(ids)), headers(ids));
    try {
      assert.equal(stream.status, 200, `${name}: ${stream.text}`);
      await stream.blocks.atLeast(1);
      if (expected.length > 0) await stream.events.atLeast(expected.length);
      await sleep(300);
      assert.deepEqual(stream.events.items.map((event) => event.message.body), expected, name);
      const [live] = await publishAll(room, ['d']);
      const events = await stream.events.atLeast(expected.length + 1);
      assert.equal(events.at(-1).id, String(live), `${name}: then live messages`);
    } finally {
      await stream.close();
    }
  }
});

test('an idle event stream gets a ": keep-alive" comment every http.keep_alive_s', async () => {
  const room = roomName('sse-keep-alive');
  const stream = await EventStream.open(url(room));
  try {
    assert.equal(stream.status, 200, stream.text);
    const comments = await stream.comments.atLeast(2, KEEP_ALIVE_S * 1000 * 4);
    assert.deepEqual(comments.map((comment) => comment.text), ['keep-alive', 'keep-alive']);
    assert.ok(comments[0].at - stream.openedAt >= KEEP_ALIVE_S * 1000 - 300,
      `the first came ${comments[0].at - stream.openedAt} ms after opening, not after ${KEEP_ALIVE_S} s idle`);
    assert.equal(stream.events.items.length, 0);
  } finally {
    await stream.close();
  }
});

// --- Refusals -------------------------------------------------------------------------------

test('methods other than GET, POST and OPTIONS get 405 with Allow; a GET accepting neither JSON nor event streams gets 406', async () => {
  const room = roomName('methods');
  for (const method of ['PUT', 'DELETE', 'PATCH']) {
    const answer = await request(url(room), { method, body: method === 'DELETE' ? undefined : 'x' });
    assert.equal(answer.status, 405, method);
    assert.equal(answer.headers.get('allow'), 'GET, POST, OPTIONS', method);
    assert.match(answer.headers.get('content-type'), /^text\/plain/, method);
    assert.match(answer.text, /GET.*POST/, method);
  }
  for (const accept of ['text/html', 'application/xml', 'image/png, text/plain']) {
    const answer = await poll(room, {}, { headers: { Accept: accept } });
    assert.equal(answer.status, 406, accept);
    assert.match(answer.headers.get('content-type'), /^text\/plain/, accept);
    assert.match(answer.text, /application\/json.*text\/event-stream/s, accept);
  }
  for (const accept of ['application/json', '*/*', 'text/html, */*;q=0.1', 'application/json; charset=utf-8']) {
    assert.equal((await poll(room, {}, { headers: { Accept: accept } })).status, 200, accept);
  }
});

test('a POST body over limits.max_body_bytes gets 413 and is not published; one at the limit is', async () => {
  const room = roomName('too-big');
  const tooBig = await post(room, 'x'.repeat(MAX_BODY_BYTES + 1));
  assert.equal(tooBig.status, 413);
  assert.match(tooBig.headers.get('content-type'), /^text\/plain/);
  assert.match(tooBig.text, new RegExp(`${MAX_BODY_BYTES + 1}.*${MAX_BODY_BYTES}.*max_body_bytes`));
  const atLimit = await post(room, 'y'.repeat(MAX_BODY_BYTES));
  assert.equal(atLimit.status, 201, atLimit.text);
  const history = await poll(room);
  assert.deepEqual(history.json.messages.map((m) => [m.id, m.body.length]), [[atLimit.json.id, MAX_BODY_BYTES]]);
});

test('bad requests get 400 saying why: a GET of a queue or /user/ destination, a bad after, last, wait or Last-Event-ID, an empty topic name, a login with a quote', async () => {
  const room = roomName('bad');
  const cases = [
    ['GET /queue/jobs', () => poll(room, {}, { destination: '/queue/jobs' }), /\/queue\/jobs cannot be read over HTTP/],
    ['GET /user/queue/inbox', () => poll(room, {}, { destination: '/user/queue/inbox' }), /cannot be read over HTTP/],
    ['after=abc', () => poll(room, { after: 'abc' }), /after/],
    ['after=-1', () => poll(room, { after: -1 }), /after/],
    ['last=many', () => poll(room, { last: 'many' }), /last/],
    ['wait=soon', () => poll(room, { after: 0, wait: 'soon' }), /wait/],
    ['Last-Event-ID: x', () => poll(room, {}, { headers: { Accept: 'text/event-stream', 'Last-Event-ID': 'x' } }), /Last-Event-ID/],
    ['GET /topic/', () => poll(room, {}, { destination: '/topic/' }), /./],
    ['POST /topic/', () => post(room, 'nowhere', { destination: '/topic/' }), /./],
    ['POST /user/alice', () => post(room, 'to whom?', { destination: '/user/alice' }), /\/user\//],
    ['POST ?login=a"b', () => post(room, 'quoted', { query: { login: 'a"b' } }), /login/],
  ];
  for (const [name, send, reason] of cases) {
    const answer = await send();
    assert.equal(answer.status, 400, `${name}: ${answer.status} ${answer.text}`);
    assert.match(answer.headers.get('content-type'), /^text\/plain/, name);
    assert.match(answer.text, reason, name);
  }
  assert.deepEqual((await poll(room)).json.messages, [], 'nothing refused was published');
});

test('unknown paths under a room get 404 naming what a room serves', async () => {
  const room = roomName('unknown');
  for (const path of ['/nope', '/topic', '/presence', '/topics/chat']) {
    for (const method of ['GET', 'POST']) {
      const answer = await request(`${server.httpUrl}/rooms/${room}${path}`, { method, body: method === 'POST' ? 'x' : undefined });
      assert.equal(answer.status, 404, `${method} ${path}: ${answer.text}`);
      assert.match(answer.text, /\/topic\//, `${method} ${path}`);
    }
  }
});

test('a room holds at most http.max_streams event streams: the next gets 429 with Retry-After, while the open ones keep streaming and polls are still answered', async () => {
  const room = roomName('stream-cap');
  const streams = [];
  let elsewhere;
  try {
    for (let i = 0; i < MAX_STREAMS; i += 1) {
      const stream = await EventStream.open(url(room));
      assert.equal(stream.status, 200, stream.text);
      streams.push(stream);
    }
    const refused = await EventStream.open(url(room));
    assert.equal(refused.status, 429);
    assert.equal(refused.headers.get('retry-after'), '5');
    assert.match(refused.headers.get('content-type'), /^text\/plain/);
    assert.match(refused.text, new RegExp(`${MAX_STREAMS} event streams \\(http\\.max_streams\\)`));

    assert.equal((await poll(room)).status, 200, 'a short poll is not a stream');
    const [id] = await publishAll(room, ['still streaming']);
    for (const stream of streams) assert.equal((await stream.events.atLeast(1))[0].id, String(id));
    // The cap is per room.
    elsewhere = await EventStream.open(url(roomName('stream-cap-other')));
    assert.equal(elsewhere.status, 200, elsewhere.text);
  } finally {
    await Promise.all([...streams, elsewhere].filter(Boolean).map((stream) => stream.close()));
  }
});

test('a room holds at most http.max_waiting_polls long polls: the next gets 429 with Retry-After; short polls are still answered, and one message answers every waiting poll', async () => {
  const room = roomName('poll-cap');
  const [id] = await publishAll(room, ['start']);
  const waiting = Array.from({ length: MAX_WAITING_POLLS }, () => poll(room, { after: id, wait: MAX_WAIT_S }));
  await pollsWaiting(room, MAX_WAITING_POLLS);

  const refused = await poll(room, { after: id, wait: MAX_WAIT_S });
  assert.equal(refused.status, 429);
  assert.equal(refused.headers.get('retry-after'), '5');
  assert.match(refused.text, new RegExp(`${MAX_WAITING_POLLS} waiting polls \\(http\\.max_waiting_polls\\)`));
  const short = await poll(room, { after: id });
  assert.equal(short.status, 200, 'a short poll does not wait, so it is not refused');
  assert.deepEqual(short.json, { messages: [], next_after: id });

  const [next] = await publishAll(room, ['for everyone waiting']);
  for (const answer of await Promise.all(waiting)) {
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(answer.json.messages.map((m) => [m.id, m.body]), [[next, 'for everyone waiting']]);
    assert.equal(answer.json.next_after, next);
  }
  assert.equal((await stats(room)).open_requests.waiting_polls, 0);
});

// --- Cross-origin pages ---------------------------------------------------------------------

test('CORS: an OPTIONS preflight from an allowed origin gets 204 with the methods, the asked-for headers and Max-Age, answered without the room; another origin gets 403', async () => {
  const room = roomName('preflight');
  await publishAll(room, ['wakes the room']);
  const requestsBefore = (await stats(room)).events_since_wake.requests;
  const answer = await request(url(room), {
    method: 'OPTIONS',
    headers: {
      Origin: ALLOWED_ORIGIN,
      'Access-Control-Request-Method': 'POST',
      'Access-Control-Request-Headers': 'content-type, x-stomp-priority',
    },
  });
  assert.equal(answer.status, 204, answer.text);
  assert.equal(answer.text, '');
  assert.equal(answer.headers.get('access-control-allow-origin'), ALLOWED_ORIGIN);
  assert.equal(answer.headers.get('access-control-allow-methods'), 'GET, POST');
  assert.equal(answer.headers.get('access-control-allow-headers'), 'content-type, x-stomp-priority');
  assert.equal(answer.headers.get('access-control-max-age'), '600');
  assert.match(answer.headers.get('vary') ?? '', /Origin/);
  assert.equal((await stats(room)).events_since_wake.requests, requestsBefore, 'the room handled no request: the router answered');

  const refused = await request(url(room), {
    method: 'OPTIONS',
    headers: { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'POST' },
  });
  assert.equal(refused.status, 403);
  assert.equal(refused.headers.get('access-control-allow-origin'), null);
  assert.ok(refused.text.includes('https://evil.example'), refused.text);
});

test('CORS: a POST, poll, long poll, event stream or refusal for an allowed origin carries Access-Control-Allow-Origin and Vary: Origin; another origin gets 403 and publishes nothing', async () => {
  const room = roomName('origins');
  const cors = { Origin: ALLOWED_ORIGIN };
  const allowed = (answer, what) => {
    assert.equal(answer.headers.get('access-control-allow-origin'), ALLOWED_ORIGIN, what);
    assert.match(answer.headers.get('vary') ?? '', /Origin/, what);
  };

  const published = await post(room, 'from the app', { headers: cors });
  assert.equal(published.status, 201, published.text);
  allowed(published, 'POST');
  const read = await poll(room, {}, { headers: cors });
  assert.deepEqual(bodiesOf(read), ['from the app']);
  allowed(read, 'short poll');

  const waiting = poll(room, { after: published.json.id, wait: MAX_WAIT_S }, { headers: cors });
  await pollsWaiting(room, 1);
  await publishAll(room, ['wakes the poll']);
  const answered = await waiting;
  assert.deepEqual(bodiesOf(answered), ['wakes the poll']);
  allowed(answered, 'a long poll answered by a message');
  const timedOut = await poll(room, { after: answered.json.next_after, wait: 1 }, { headers: cors });
  assert.deepEqual(timedOut.json.messages, []);
  allowed(timedOut, 'a long poll whose wait ran out');

  const stream = await EventStream.open(url(room), cors);
  try {
    assert.equal(stream.status, 200, stream.text);
    allowed(stream, 'event stream');
  } finally {
    await stream.close();
  }
  const notAcceptable = await poll(room, {}, { headers: { ...cors, Accept: 'text/html' } });
  assert.equal(notAcceptable.status, 406);
  allowed(notAcceptable, 'a refusal, so the page can read why');

  for (const origin of ['https://evil.example', 'https://app.example.evil.example', 'http://app.example']) {
    const forged = await post(room, `forged by ${origin}`, { headers: { Origin: origin } });
    assert.equal(forged.status, 403, `POST from ${origin}`);
    assert.equal(forged.headers.get('access-control-allow-origin'), null);
    assert.ok(forged.text.includes(origin), forged.text);
    const peek = await poll(room, {}, { headers: { Origin: origin } });
    assert.equal(peek.status, 403, `GET from ${origin}`);
  }
  assert.deepEqual(bodiesOf(await poll(room)), ['from the app', 'wakes the poll'], 'no refused POST was published');
});

// --- What the room holds open ---------------------------------------------------------------

test('stats count the requests a room holds open: open_requests.streams while a stream is open, waiting_polls while a poll waits, and events_since_wake.requests', async () => {
  const room = roomName('stats');
  const stream = await EventStream.open(url(room));
  try {
    assert.equal(stream.status, 200, stream.text);
    let now = await stats(room);
    assert.deepEqual(now.open_requests, { waiting_polls: 0, streams: 1, sockjs_receivers: 0 });
    assert.ok(now.events_since_wake.requests >= 1, JSON.stringify(now.events_since_wake));

    const waiting = poll(room, { after: 0, wait: MAX_WAIT_S });
    await pollsWaiting(room, 1);
    now = await stats(room);
    assert.deepEqual(now.open_requests, { waiting_polls: 1, streams: 1, sockjs_receivers: 0 });
    const requests = now.events_since_wake.requests;

    const [id] = await publishAll(room, ['answers the poll, feeds the stream']);
    assert.deepEqual((await waiting).json.messages.map((m) => m.id), [id]);
    assert.equal((await stream.events.atLeast(1))[0].id, String(id));
    now = await stats(room);
    assert.deepEqual(now.open_requests, { waiting_polls: 0, streams: 1, sockjs_receivers: 0 }, 'the answered poll is gone; the stream stays');
    assert.equal(now.events_since_wake.requests, requests + 1, 'the POST counted as one request');
  } finally {
    await stream.close();
  }
});

test('a stream whose client went away is forgotten without any message on its topic: its place under http.max_streams is free again', async () => {
  const room = roomName('stream-gone');
  const streams = [];
  for (let i = 0; i < MAX_STREAMS; i += 1) streams.push(await EventStream.open(url(room)));
  assert.deepEqual(streams.map((stream) => stream.status), Array(MAX_STREAMS).fill(200));
  assert.equal((await EventStream.open(url(room))).status, 429);
  await Promise.all(streams.map((stream) => stream.close()));

  // Nothing is published: the room learns of each client's leaving from its stream ending.
  await until(async () => (await stats(room)).open_requests.streams === 0,
    'the room to forget the closed streams', 10_000, 250);
  const again = await EventStream.open(url(room));
  try {
    assert.equal(again.status, 200, again.text);
  } finally {
    await again.close();
  }
});
