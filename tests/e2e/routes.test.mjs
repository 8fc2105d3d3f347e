// The route the router reads and hands to the room's object, against the real build: what a
// path may carry arrives at the room as it was meant, however it had to be escaped on the way.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { useServer } from './harness.mjs';

const server = useServer({});

test('a destination outside Latin-1, with percent signs and spaces, reaches its room intact', async () => {
  const room = `routes-${process.pid}`;
  // '/topic/café 漢字 € 100%': characters a header cannot carry as they are.
  const path = '/topic/caf%C3%A9%20%E6%BC%A2%E5%AD%97%20%E2%82%AC%20100%25';
  const published = await fetch(`${server.httpUrl}/rooms/${room}${path}`, { method: 'POST', body: 'served' });
  assert.equal(published.status, 201, await published.clone().text());
  assert.equal((await published.json()).destination, '/topic/café 漢字 € 100%');
  const read = await fetch(`${server.httpUrl}/rooms/${room}${path}?last=1`);
  assert.equal(read.status, 200);
  const { messages } = await read.json();
  assert.deepEqual(messages.map((m) => [m.destination, m.body]), [['/topic/café 漢字 € 100%', 'served']]);
});

test('a room may be called stats: its counters are at /rooms/stats/stats', async () => {
  const response = await fetch(`${server.httpUrl}/rooms/stats/stats`);
  assert.equal(response.status, 200);
  assert.equal(typeof (await response.json()).wakes, 'number');
});
