// Settings that cannot be read, against the real build: the Worker reads ROOM_SETTINGS once and
// gives every request that would reach a room, or an endpoint, one answer: a 503 that names the
// problem. Nothing is served on defaults meanwhile (the settings hold the security rules).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';
import { useServer } from './harness.mjs';

const server = useServer({
  vars: {
    // A field of the wrong type: the whole setting is invalid.
    ROOM_SETTINGS: JSON.stringify({ endpoints: ['/ws-stomp'], liveness_check_ms: 'soon' }),
  },
});

const PROBLEM = /ROOM_SETTINGS is invalid \(.*liveness_check_ms|ROOM_SETTINGS is invalid \(invalid type/;

async function answerTo(path, init) {
  const response = await fetch(`${server.httpUrl}${path}`, init);
  return { status: response.status, text: await response.text() };
}

test('with invalid settings, every request for a room or an endpoint gets one 503 naming the problem', async () => {
  const requests = [
    ['/rooms/lobby/topic/chat', { method: 'POST', body: 'hello' }],
    ['/rooms/lobby/topic/chat?last=5', {}],
    ['/rooms/lobby/stats', {}],
    ['/rooms/lobby/topic/chat', { method: 'OPTIONS', headers: { Origin: 'https://elsewhere.example' } }],
    ['/ws-stomp/info', {}],
    ['/ws-stomp/0/abc/xhr', { method: 'POST' }],
    ['/nowhere', {}],
  ];
  for (const [path, init] of requests) {
    const { status, text } = await answerTo(path, init);
    assert.equal(status, 503, `${init.method ?? 'GET'} ${path}: ${text}`);
    assert.match(text, PROBLEM, `${path}`);
    assert.match(text, /ask its operator/, `${path}`);
  }
});

test('with invalid settings, a WebSocket upgrade to a room is refused with the same 503', async () => {
  const refusal = await new Promise((resolve, reject) => {
    const socket = new WebSocket(`${server.wsUrl}/rooms/lobby`, ['v12.stomp']);
    socket.on('open', () => reject(new Error('the socket opened')));
    socket.on('unexpected-response', (_request, response) => {
      let body = '';
      response.on('data', (chunk) => { body += chunk; });
      response.on('end', () => resolve({ status: response.statusCode, body }));
    });
    socket.on('error', () => {});
  });
  assert.equal(refusal.status, 503);
  assert.match(refusal.body, PROBLEM);
});

test('with invalid settings, the static page is still served', async () => {
  const { status, text } = await answerTo('/', {});
  assert.equal(status, 200);
  assert.match(text, /<html/i);
});
