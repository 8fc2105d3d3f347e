// Spring's clients at the edge: a `/ws-stomp` endpoint whose connections share one room,
// stomp.js over the real sockjs-client (each of its transports forced in turn: websocket,
// xhr-streaming, xhr-polling, eventsource), and Spring-style destinations (`/sub/...` topics,
// SENDs to `/pub/...` delivered to `/sub/...`).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { Client } from '@stomp/stompjs';
import SockJS from 'sockjs-client';
import WebSocket from 'ws';
import { launchChromium } from './browser.mjs';
import { useServer } from './harness.mjs';
import { connect, Inbox } from './stomp.mjs';

const server = useServer({
  vars: {
    ROOM_SETTINGS: JSON.stringify({
      endpoints: ['/ws-stomp'],
      destinations: {
        topics: ['/sub/'],
        // A SEND to /pub/{rest} goes to /sub/{rest}; one to /pub/chat/message goes to the room
        // its JSON body names, as the controller of the tutorial it comes from forwards it.
        application: { '/pub/': '/sub/', '/pub/chat/message': '/sub/chat/room/{roomId}' },
      },
    }),
  },
});

/** stomp.js over sockjs-client, as a Spring tutorial's page connects: resolves once CONNECTED. */
async function connectOverSockJs(transports = ['websocket']) {
  const sockets = [];
  const client = new Client({
    webSocketFactory: () => {
      const socket = new SockJS(`${server.httpUrl}/ws-stomp`, null, { transports });
      sockets.push(socket);
      return socket;
    },
    reconnectDelay: 0,
    heartbeatIncoming: 0,
    heartbeatOutgoing: 0,
  });
  const connected = new Promise((resolve, reject) => {
    client.onConnect = resolve;
    client.onStompError = (frame) => reject(new Error(`ERROR: ${frame.headers.message} ${frame.body}`));
    client.onWebSocketClose = (event) => reject(new Error(`closed before CONNECTED (${event.code} ${event.reason})`));
  });
  client.activate();
  const frame = await connected;
  // The transport sockjs-client chose (it sets it once the session is open).
  return { client, frame, transport: sockets.at(-1).transport };
}

/** Subscribes with a receipt, so the subscription is in place when this resolves. */
async function subscribeConfirmed(client, destination) {
  const inbox = new Inbox(`messages on ${destination}`);
  const receipt = `sub-${Math.random().toString(36).slice(2)}`;
  const ready = new Promise((resolve) => client.watchForReceipt(receipt, resolve));
  client.subscribe(destination, (message) => inbox.push(message), { receipt });
  await ready;
  return inbox;
}

function subscribe(client, destination) {
  const inbox = new Inbox(`messages on ${destination}`);
  client.subscribe(destination, (message) => inbox.push(message));
  return inbox;
}

test('stomp.js over sockjs-client chats through /ws-stomp with a plain WebSocket client: /pub SENDs reach /sub subscribers both ways', async () => {
  const { client: sockjsClient, frame } = await connectOverSockJs();
  assert.equal(frame.headers.version, '1.2');
  const plain = await connect(`${server.wsUrl}/ws-stomp`);
  const room = `room-${process.pid}-${Date.now()}`;
  const toSockJs = subscribe(sockjsClient, `/sub/chat/room/${room}`);
  const toPlain = plain.subscribe(`/sub/chat/room/${room}`);
  // A receipt from each, so both subscriptions are in place before anyone sends.
  await new Promise((resolve) => {
    sockjsClient.watchForReceipt('sub-ready', resolve);
    sockjsClient.subscribe('/sub/ready', () => {}, { receipt: 'sub-ready' });
  });
  await plain.withReceipt((h) => plain.subscribe('/sub/ready', h));

  plain.publish(`/pub/chat/room/${room}`, 'from a plain WebSocket');
  sockjsClient.publish({ destination: `/pub/chat/room/${room}`, body: 'from SockJS, with "quotes" and \u2028 and é' });
  const [a, b] = await toSockJs.atLeast(2);
  assert.deepEqual([a.body, b.body], ['from a plain WebSocket', 'from SockJS, with "quotes" and \u2028 and é']);
  assert.equal(a.headers.destination, `/sub/chat/room/${room}`, 'delivered to the mapped broker destination');
  const fromSockJs = await toPlain.atLeast(2);
  assert.deepEqual(fromSockJs.map((m) => m.body), ['from a plain WebSocket', 'from SockJS, with "quotes" and \u2028 and é']);
  await sockjsClient.deactivate();
  await plain.disconnect();
});

test('one endpoint is one room: connections to /ws-stomp and its SockJS URLs share it, and a room URL of the same name is that room', async () => {
  const { client: sockjsClient } = await connectOverSockJs();
  const inbox = subscribe(sockjsClient, '/topic/shared');
  await new Promise((resolve) => {
    sockjsClient.watchForReceipt('r', resolve);
    sockjsClient.subscribe('/topic/sync', () => {}, { receipt: 'r' });
  });
  const viaRoomUrl = await connect(`${server.wsUrl}/rooms/ws-stomp`);
  await viaRoomUrl.publishConfirmed('/topic/shared', 'same room');
  const [message] = await inbox.atLeast(1);
  assert.equal(message.body, 'same room');
  await sockjsClient.deactivate();
  await viaRoomUrl.disconnect();
});

test('/ws-stomp/info tells sockjs-client what it needs, readable cross-origin with credentials; transports not served get 404', async () => {
  const response = await fetch(`${server.httpUrl}/ws-stomp/info?t=1`, { headers: { Origin: 'https://app.example' } });
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type'), /^application\/json/);
  assert.equal(response.headers.get('access-control-allow-origin'), 'https://app.example');
  assert.equal(response.headers.get('access-control-allow-credentials'), 'true');
  assert.match(response.headers.get('cache-control'), /no-store/);
  const info = await response.json();
  assert.equal(info.websocket, true);
  assert.equal(info.cookie_needed, false);
  assert.deepEqual(info.origins, ['*:*']);
  const greeting = await fetch(`${server.httpUrl}/ws-stomp`);
  assert.equal(await greeting.text(), 'Welcome to SockJS!\n');
  const jsonp = await fetch(`${server.httpUrl}/ws-stomp/123/abcdefgh/jsonp?c=f`);
  assert.equal(jsonp.status, 404);
});

// sockjs-client's names for its transports, and the names in their URLs.
const TRANSPORTS = { websocket: 'websocket', 'xhr-streaming': 'xhr_streaming', 'xhr-polling': 'xhr', eventsource: 'eventsource' };

for (const transport of Object.keys(TRANSPORTS)) {
  test(`sockjs-client forced to ${transport}: stomp.js connects, subscribes, publishes and receives, and chats with a plain WebSocket client`, async () => {
    const { client, frame, transport: used } = await connectOverSockJs([transport]);
    assert.equal(used, transport, 'the forced transport carried the session');
    assert.equal(frame.headers.version, '1.2');
    const room = `${transport}-${process.pid}-${Date.now()}`;
    const inbox = await subscribeConfirmed(client, `/sub/chat/room/${room}`);
    const plain = await connect(`${server.wsUrl}/ws-stomp`);
    const toPlain = plain.subscribe(`/sub/chat/room/${room}`);
    await plain.withReceipt((h) => plain.subscribe('/sub/ready', h));
    // Long and awkward bodies: JSON escapes, %-escapes for eventsource, more than one frame per answer.
    const awkward = `100% "quoted" \u2028 é ${'x'.repeat(5000)}`;
    client.publish({ destination: `/pub/chat/room/${room}`, body: awkward });
    plain.publish(`/pub/chat/room/${room}`, 'from a plain WebSocket');
    const received = (await inbox.atLeast(2)).map((m) => m.body);
    assert.ok(received.includes(awkward), 'the long, awkward body came back intact');
    assert.ok(received.includes('from a plain WebSocket'));
    const fromSockJs = (await toPlain.atLeast(2)).find((m) => m.body.startsWith('100%'));
    assert.ok(fromSockJs?.body === awkward, 'the plain client got the SockJS client\'s body intact');
    assert.equal(fromSockJs.headers.destination, `/sub/chat/room/${room}`);
    await client.deactivate();
    await plain.disconnect();
  });
}

test('STOMP heart-beats over xhr-polling: with 1 s heart-beats both ways, stomp.js stays connected and still receives', async () => {
  const closes = [];
  const client = new Client({
    webSocketFactory: () => new SockJS(`${server.httpUrl}/ws-stomp`, null, { transports: ['xhr-polling'] }),
    reconnectDelay: 0,
    heartbeatIncoming: 1000,
    heartbeatOutgoing: 1000,
  });
  const connected = new Promise((resolve) => { client.onConnect = resolve; });
  client.onWebSocketClose = (event) => closes.push(event.code);
  client.activate();
  const frame = await connected;
  assert.equal(frame.headers['heart-beat'], '1000,1000');
  const inbox = await subscribeConfirmed(client, '/sub/beats');
  // stomp.js closes a connection that is silent for twice its incoming interval.
  await new Promise((resolve) => setTimeout(resolve, 4000));
  assert.deepEqual(closes, [], 'no close while heart-beats flow');
  const plain = await connect(`${server.wsUrl}/ws-stomp`);
  plain.publish('/sub/beats', 'still here');
  const [message] = await inbox.atLeast(1);
  assert.equal(message.body, 'still here');
  await client.deactivate();
  await plain.disconnect();
});

test('a message sent over each SockJS transport reaches subscribers on every other transport and on a plain WebSocket', async () => {
  const room = `mixed-${process.pid}-${Date.now()}`;
  const destination = `/sub/chat/room/${room}`;
  const clients = {};
  for (const transport of Object.keys(TRANSPORTS)) {
    const { client, transport: used } = await connectOverSockJs([transport]);
    assert.equal(used, transport);
    clients[transport] = { client, inbox: await subscribeConfirmed(client, destination) };
  }
  const plain = await connect(`${server.wsUrl}/ws-stomp`);
  const plainInbox = plain.subscribe(destination);
  await plain.withReceipt((h) => plain.subscribe('/sub/ready', h));
  for (const [transport, { client }] of Object.entries(clients)) {
    client.publish({ destination: `/pub/chat/room/${room}`, body: `via ${transport}` });
  }
  plain.publish(`/pub/chat/room/${room}`, 'via plain');
  const expected = [...Object.keys(clients).map((t) => `via ${t}`), 'via plain'].sort();
  for (const [transport, { inbox }] of Object.entries(clients)) {
    const bodies = (await inbox.atLeast(expected.length)).map((m) => m.body).sort();
    assert.deepEqual(bodies, expected, `everything reached the ${transport} client`);
  }
  assert.deepEqual((await plainInbox.atLeast(expected.length)).map((m) => m.body).sort(), expected);
  for (const { client } of Object.values(clients)) await client.deactivate();
  await plain.disconnect();
});

test('SockJS over HTTP, raw: o, xhr_send 204, frames on the next poll, 2010 for a second receiver, the xhr_streaming prelude, 404 for an unknown session', async () => {
  const base = `${server.httpUrl}/ws-stomp/000/raw${process.pid}${Date.now()}`;
  const post = (transport, body) => fetch(`${base}/${transport}`, { method: 'POST', body, headers: { Origin: 'https://app.example' } });
  const opened = await post('xhr');
  assert.equal(opened.status, 200);
  assert.equal(await opened.text(), 'o\n');
  assert.equal(opened.headers.get('access-control-allow-origin'), 'https://app.example');
  assert.equal(opened.headers.get('access-control-allow-credentials'), 'true');
  const sent = await post('xhr_send', JSON.stringify(['CONNECT\naccept-version:1.2\n\n\u0000']));
  assert.equal(sent.status, 204);
  assert.match(await (await post('xhr')).text(), /^a\["CONNECTED\\nversion:1.2\\n/);
  const waiting = post('xhr');
  await new Promise((resolve) => setTimeout(resolve, 300));
  const second = await post('xhr');
  assert.equal(await second.text(), 'c[2010,"Another connection still open"]\n');
  await post('xhr_send', JSON.stringify(['DISCONNECT\nreceipt:bye\n\n\u0000']));
  assert.match(await (await waiting).text(), /^a\["RECEIPT\\nreceipt-id:bye\\n/, 'the waiting poll is answered at once');
  assert.equal(await (await post('xhr')).text(), 'c[1000,"DISCONNECT"]\n');
  assert.equal(await (await post('xhr')).text(), 'c[1000,"DISCONNECT"]\n', 'and again, until the session ends');
  const streaming = await fetch(`${server.httpUrl}/ws-stomp/000/stream${process.pid}/xhr_streaming`, { method: 'POST' });
  const reader = streaming.body.getReader();
  let text = '';
  while (!text.includes('o\n')) text += new TextDecoder().decode((await reader.read()).value);
  assert.equal(text, `${'h'.repeat(2048)}\no\n`);
  await reader.cancel();
  const unknown = await post('../nobody/xhr_send', '["x"]');
  assert.equal(unknown.status, 404);
});

test('SockJS framing: the session opens with "o", a STOMP frame goes inside a["..."], heart-beats are answered, broken framing closes the socket', async () => {
  const ws = new WebSocket(`${server.wsUrl}/ws-stomp/000/framing${process.pid}/websocket`);
  const received = [];
  const next = () => new Promise((resolve) => {
    if (received.length) return resolve(received.shift());
    ws.once('message', () => resolve(received.shift()));
  });
  ws.on('message', (data) => received.push(data.toString()));
  const closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  assert.equal(await next(), 'o');
  ws.send(JSON.stringify(['CONNECT\naccept-version:1.2\nheart-beat:1000,0\n\n\u0000']));
  const connected = await next();
  assert.match(connected, /^a\["CONNECTED\\nversion:1.2\\n/);
  ws.send(JSON.stringify(['\n']));
  assert.equal(await next(), 'a["\\n"]', 'a framed heart-beat is answered in kind');
  ws.send('["broken');
  const close = await closed;
  assert.equal(close.code, 1002);
  assert.equal(close.reason, 'Broken framing.');
});

test('an xhr-polling session lost in a restart: sockjs-client reports the close, and stomp.js reconnects with a new session that chats again', async () => {
  const destination = `/sub/chat/room/lost-${process.pid}`;
  const inbox = new Inbox(`messages on ${destination}`);
  const closes = [];
  const sessions = [];
  let connected = null;
  const nextConnect = () => new Promise((resolve) => { connected = resolve; });
  const client = new Client({
    webSocketFactory: () => {
      const socket = new SockJS(`${server.httpUrl}/ws-stomp`, null, { transports: ['xhr-polling'] });
      sessions.push(socket);
      return socket;
    },
    reconnectDelay: 300,
    heartbeatIncoming: 0,
    heartbeatOutgoing: 0,
  });
  // As an app does: subscribe in onConnect, so a new session subscribes again.
  client.onConnect = () => {
    const receipt = `sub-${sessions.length}`;
    client.watchForReceipt(receipt, () => connected());
    client.subscribe(destination, (message) => inbox.push(message), { receipt });
  };
  client.onWebSocketClose = (event) => closes.push(event.code);
  const first = nextConnect();
  client.activate();
  await first;
  const again = nextConnect();
  await server.restart();
  await again;
  assert.ok(closes.length >= 1 && closes.every((code) => code !== 1000), `the lost session was reported as a close: ${closes}`);
  assert.ok(sessions.length >= 2, 'a new SockJS session');
  const plain = await connect(`${server.wsUrl}/ws-stomp`);
  plain.publish(destination, 'after the restart');
  const [message] = await inbox.atLeast(1);
  assert.equal(message.body, 'after the restart');
  await client.deactivate();
  await plain.disconnect();
});

// A page written the way a Spring chat tutorial writes it, served from the app's own origin:
// sockjs-client and stomp.js from script tags, Stomp.over(socket), /sub and /pub.
// Another origin than the server's, as a Spring app's frontend usually is; the test serves it
// through the browser's request interception, so nothing listens there.
const APP = 'http://app.example';
// The frontend here is "public" and the test server is on the loopback address, which
// Chromium's local-network-access rules would hold back; a deployed server is public too.
const CHROMIUM_FLAGS = ['--disable-features=LocalNetworkAccessChecks,PrivateNetworkAccessSendPreflights,BlockInsecurePrivateNetworkRequests'];
const fromNodeModules = (path) => new URL(`../../node_modules/${path}`, import.meta.url);
const SCRIPTS = {
  '/sockjs.min.js': fromNodeModules('sockjs-client/dist/sockjs.min.js'),
  '/stomp.umd.min.js': fromNodeModules('@stomp/stompjs/bundles/stomp.umd.min.js'),
  // The stomp.js of older tutorials (jmesnil's 2.3.3): a global `Stomp`, `Stomp.over(sock)`.
  '/stomp.min.js': fromNodeModules('stompjs/lib/stomp.min.js'),
};
// `?nows=1` takes WebSocket away from the page, as a proxy that blocks it would: sockjs-client
// then falls back to its HTTP transports. `oldStomp`: the page of an older tutorial, with
// stomp.js 2.3.3 and `Stomp.over(sock)`, sending to /pub/chat/message (routed by the body's
// roomId); otherwise today's @stomp/stompjs, sending to /pub/chat/room/{roomId}.
const tutorialPage = (serverUrl, oldStomp) => `<!DOCTYPE html>
<html><body>
<ul id="messages"></ul>
<script>if (location.search.includes('nows=1')) window.WebSocket = undefined;</script>
<script src="/sockjs.min.js"></script>
<script src="${oldStomp ? '/stomp.min.js' : '/stomp.umd.min.js'}"></script>
<script>
  const roomId = new URLSearchParams(location.search).get('roomId');
  const ws = ${oldStomp
    ? `Stomp.over(window.sock = new SockJS('${serverUrl}/ws-stomp'))`
    : `StompJs.Stomp.over(() => (window.sock = new SockJS('${serverUrl}/ws-stomp')))`};
  ws.connect({}, () => {
    ws.subscribe('/sub/chat/room/' + roomId, (message) => {
      const recv = JSON.parse(message.body);
      const item = document.createElement('li');
      item.textContent = recv.sender + ': ' + recv.message;
      document.getElementById('messages').append(item);
    });
    document.body.dataset.connected = window.sock.transport;
  });
  window.sendMessage = (message) =>
    ws.send(${oldStomp ? "'/pub/chat/message'" : "'/pub/chat/room/' + roomId"}, {}, JSON.stringify({ type: 'TALK', roomId, sender: 'Ada', message }));
</script>
</body></html>`;

let browser = null;
after(async () => {
  await browser?.close();
});

for (const { nows, oldStomp, transport, title } of [
  { nows: false, transport: 'websocket', title: 'a page written like a Spring tutorial (SockJS + Stomp.over, /sub and /pub), on its own origin, chats with a plain stomp.js client' },
  { nows: true, transport: 'xhr-streaming', title: 'the same page where WebSocket is blocked falls back to xhr-streaming in Chromium and still chats both ways' },
  { nows: false, oldStomp: true, transport: 'websocket', title: 'the page of an older tutorial (stomp.js 2.3.3, Stomp.over(sock), SENDs to /pub/chat/message routed by the body\'s roomId) chats the same way' },
]) test(title, async () => {
  browser ??= await launchChromium(CHROMIUM_FLAGS);
  const context = await browser.newContext();
  await context.route(`${APP}/**`, (route) => {
    const path = new URL(route.request().url()).pathname;
    if (SCRIPTS[path]) return route.fulfill({ body: readFileSync(SCRIPTS[path]), contentType: 'application/javascript' });
    return route.fulfill({ body: tutorialPage(server.httpUrl, oldStomp), contentType: 'text/html' });
  });
  const page = await context.newPage();
  const pageLog = [];
  page.on('pageerror', (error) => pageLog.push(String(error)));
  page.on('console', (message) => pageLog.push(`${message.type()}: ${message.text()}`));
  page.on('requestfailed', (request) => pageLog.push(`failed ${request.url()} ${request.failure()?.errorText}`));
  const roomId = `${process.pid}-${Date.now()}`;
  const plain = await connect(`${server.wsUrl}/ws-stomp`);
  const inbox = plain.subscribe(`/sub/chat/room/${roomId}`);
  await plain.withReceipt((h) => plain.subscribe('/sub/ready', h));
  try {
    await page.goto(`${APP}/chat.html?roomId=${roomId}${nows ? '&nows=1' : ''}`);
    // Polled on a timer: waiting on a locator (animation-frame polling) kept stomp.js's CONNECT
    // from going out in headless Chromium.
    await page.waitForFunction(() => document.body.dataset.connected, null, { polling: 100, timeout: 10_000 })
      .catch((error) => { throw new Error(`${error.message}; page log: ${pageLog.join(' | ')}`); });
    assert.equal(await page.evaluate(() => document.body.dataset.connected), transport, 'the transport sockjs-client chose');
    await page.evaluate(() => window.sendMessage('hello from the tutorial page'));
    const [fromPage] = await inbox.atLeast(1);
    assert.equal(fromPage.headers.destination, `/sub/chat/room/${roomId}`);
    assert.deepEqual(JSON.parse(fromPage.body), { type: 'TALK', roomId, sender: 'Ada', message: 'hello from the tutorial page' });
    plain.publish(`/pub/chat/room/${roomId}`, JSON.stringify({ type: 'TALK', roomId, sender: 'Bob', message: 'hi Ada' }));
    await page.locator('#messages li', { hasText: 'Bob: hi Ada' }).waitFor({ timeout: 5_000 });
    assert.deepEqual(await page.locator('#messages li').allTextContents(), ['Ada: hello from the tutorial page', 'Bob: hi Ada']);
  } finally {
    await context.close();
    await plain.disconnect();
  }
});
