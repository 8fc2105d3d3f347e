// The Worker's routing, HTTP answers and subprotocol negotiation, against the real build.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { useServer } from './harness.mjs';
import { TestSocket } from './sockets.mjs';

const server = useServer();

test('the page is served at /', async () => {
  const response = await fetch(`${server.httpUrl}/`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type'), /text\/html/);
  assert.match(await response.text(), /<title>stomp-rooms/);
});

test('a bad room name gets 400 with a plain-text reason', async () => {
  for (const [path, reason] of [
    ['/rooms/', /missing room name/],
    ['/rooms/-dash', /must start with a letter or digit/],
    ['/rooms/a%20b', /not allowed at position 2/],
    [`/rooms/${'x'.repeat(65)}`, /65 characters long/],
    ['/rooms/a%2Fb', /not allowed at position 2/],
  ]) {
    const response = await fetch(`${server.httpUrl}${path}`);
    assert.equal(response.status, 400, path);
    assert.match(response.headers.get('content-type'), /text\/plain/);
    assert.match(await response.text(), reason, path);
  }
  // `/rooms/a/b` is a path under room `a` (its HTTP destinations live there): 404, saying what is.
  const under = await fetch(`${server.httpUrl}/rooms/a/b`);
  assert.equal(under.status, 404);
  assert.match(await under.text(), /a room is \/rooms\/a \(STOMP over WebSocket\)/);
  // A WebSocket client is refused the same way, before any upgrade.
  await assert.rejects(TestSocket.open(`${server.wsUrl}/rooms/.hidden`), /unexpected HTTP 400/);
});

test('a room without a WebSocket upgrade gets 426', async () => {
  const response = await fetch(`${server.httpUrl}/rooms/lobby`);
  assert.equal(response.status, 426);
  assert.match(await response.text(), /speaks STOMP over WebSocket/);
});

test('an unknown path gets 404', async () => {
  const response = await fetch(`${server.httpUrl}/no-such-thing`);
  assert.equal(response.status, 404);
});

test('the highest offered STOMP subprotocol is echoed', async () => {
  const cases = [
    [['v10.stomp', 'v11.stomp', 'v12.stomp'], 'v12.stomp'],
    [['v12.stomp', 'v10.stomp'], 'v12.stomp'],
    [['v10.stomp', 'v11.stomp'], 'v11.stomp'],
    [['v10.stomp'], 'v10.stomp'],
    [['chat', 'v11.stomp'], 'v11.stomp'],
  ];
  for (const [offered, expected] of cases) {
    const socket = await TestSocket.open(`${server.wsUrl}/rooms/negotiation`, offered);
    assert.equal(socket.ws.protocol, expected, `offered ${offered}`);
    assert.equal(socket.upgradeHeaders['sec-websocket-protocol'], expected);
    await socket.close();
  }
});

test('no subprotocol header when the client offers none', async () => {
  const socket = await TestSocket.open(`${server.wsUrl}/rooms/negotiation`);
  assert.equal(socket.ws.protocol, '');
  assert.equal(socket.upgradeHeaders['sec-websocket-protocol'], undefined);
  await socket.close();
});
