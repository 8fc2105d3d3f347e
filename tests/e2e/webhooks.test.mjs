// Webhooks against the real build: a receiver (a small Node server started here) that fails
// some deliveries and is down for a while still receives every event at least once, each batch
// signed (checked with the same lines the README gives a receiver), in order per room.

import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DevServer, freePort, useServer } from './harness.mjs';
import { connect, sleep } from './stomp.mjs';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const receiverPort = await freePort();

const server = useServer({
  vars: {
    ROOM_SETTINGS: JSON.stringify({
      webhooks: {
        url: `http://127.0.0.1:${receiverPort}/hooks`,
        destinations: ['/topic/chat.*'],
        max_delay_ms: 200,
        vacated_grace_ms: 2000,
        retry_min_ms: 200,
        retry_max_ms: 2000,
      },
    }),
    WEBHOOK_SECRET: SECRET,
  },
});

// The receiver's check exactly as the README gives it (its `verifyWebhook`, read from there).
const readme = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'README.md'), 'utf8');
const verifySource = readme.match(/^function verifyWebhook[\s\S]*?^}$/m)?.[0];
assert.ok(verifySource, 'the README gives verifyWebhook');
// eslint-disable-next-line no-new-func
const verifyWebhook = new Function('createHmac', 'timingSafeEqual', `${verifySource}; return verifyWebhook;`)(
  createHmac, timingSafeEqual,
);

/** A receiver that answers 500 to every third POST, and can be stopped and started again. */
class Receiver {
  constructor(port) {
    this.port = port;
    this.requests = []; // { headers, body, status }
    this.server = null;
  }

  start() {
    this.server = createServer((request, response) => {
      let body = '';
      request.setEncoding('utf8');
      request.on('data', (chunk) => { body += chunk; });
      request.on('end', () => {
        const status = (this.requests.length + 1) % 3 === 0 ? 500 : 204;
        this.requests.push({ headers: request.headers, body, status });
        response.writeHead(status).end();
      });
    });
    return new Promise((resolve) => this.server.listen(this.port, '127.0.0.1', resolve));
  }

  stop() {
    const closed = new Promise((resolve) => this.server.close(resolve));
    this.server.closeAllConnections();
    return closed;
  }

  /** The events of the acknowledged batches, per room, as received. */
  acknowledged() {
    return this.requests.filter((r) => r.status < 300).map((r) => JSON.parse(r.body));
  }
}

test('a receiver that fails some deliveries and is down a while gets every event, signed, in order per room', async () => {
  const receiver = new Receiver(receiverPort);
  await receiver.start();
  try {
    const alice = await connect(`${server.wsUrl}/rooms/hooks-a`, { login: 'alice' });
    const bob = await connect(`${server.wsUrl}/rooms/hooks-b`, { login: 'bob' });
    const sent = { 'hooks-a': [], 'hooks-b': [] };
    for (let n = 0; n < 3; n += 1) {
      await alice.publishConfirmed('/topic/chat.a', `a${n}`);
      sent['hooks-a'].push(`a${n}`);
      await bob.publishConfirmed('/topic/chat.b', `b${n}`);
      sent['hooks-b'].push(`b${n}`);
    }
    await alice.publishConfirmed('/topic/elsewhere', 'never told');
    // Some batches have gone (some failed); now the receiver goes down for a while.
    await waitFor(() => receiver.requests.length >= 2, 'the first deliveries');
    await receiver.stop();
    for (let n = 3; n < 5; n += 1) {
      await alice.publishConfirmed('/topic/chat.a', `a${n}`);
      sent['hooks-a'].push(`a${n}`);
    }
    await alice.disconnect();
    await bob.disconnect();
    await sleep(3000);
    await receiver.start();

    const done = () => {
      const rooms = byRoom(receiver.acknowledged());
      return ['hooks-a', 'hooks-b'].every((room) => types(rooms[room] ?? []).includes('room.vacated'));
    };
    await waitFor(done, 'every event, room.vacated last');

    for (const request of receiver.requests) {
      assert.ok(verifyWebhook(SECRET, request.headers, request.body), `signed: ${request.headers['webhook-id']}`);
      assert.equal(request.headers['content-type'], 'application/json');
    }
    assert.ok(receiver.requests.some((r) => r.status === 500), 'some deliveries failed');

    // In order per room: a batch starts at most one past what was acknowledged before it.
    const through = {};
    for (const batch of receiver.acknowledged()) {
      const seqs = batch.events.map((e) => e.seq);
      const before = through[batch.room] ?? 0;
      assert.ok(seqs[0] <= before + 1, `${batch.room}: batch from ${seqs[0]} after ${before}`);
      seqs.forEach((seq, i) => i === 0 || assert.equal(seq, seqs[i - 1] + 1));
      through[batch.room] = Math.max(before, seqs.at(-1));
      assert.equal(batch.dropped, 0);
    }

    const rooms = byRoom(receiver.acknowledged());
    for (const [room, bodies] of Object.entries(sent)) {
      const events = rooms[room];
      const seqs = events.map((e) => e.seq);
      assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), `${room}: every event once`);
      assert.ok(events.every((e) => e.id === `${room}.${e.seq}` && e.room === room));
      assert.deepEqual(
        types(events).filter((t) => t !== 'message'),
        ['room.occupied', 'member.joined', 'member.left', 'room.vacated'],
      );
      assert.deepEqual(events.filter((e) => e.type === 'message').map((e) => e.data.body), bodies);
    }
  } finally {
    await receiver.stop().catch(() => {});
  }
});

test('a refused client is a refusal event, classified as the logs classify it, never in its words', async () => {
  const receiver = new Receiver(receiverPort);
  await receiver.start();
  try {
    const carol = await connect(`${server.wsUrl}/rooms/hooks-r`, { login: 'carol' });
    carol.publish('nowhere-words-42', 'body-words-42');
    await carol.errors.atLeast(1, 10000);
    await carol.client.deactivate().catch(() => {});
    const refusals = () => (byRoom(receiver.acknowledged())['hooks-r'] ?? []).filter((e) => e.type === 'refusal');
    await waitFor(() => refusals().length > 0, 'the refusal event');
    const [refusal] = refusals();
    assert.equal(refusal.data.reason, 'destination');
    assert.match(refusal.data.session, /^s\d+$/);
    assert.equal(refusal.data.verified, false);
    assert.equal(refusal.data.name, 'carol', 'a claimed login is a name');
    assert.ok(!JSON.stringify(receiver.acknowledged()).includes('words-42'), 'never the client\'s words');
  } finally {
    await receiver.stop().catch(() => {});
  }
});

/** Each room's events, deduplicated by id, in the room's order. */
function byRoom(batches) {
  const rooms = {};
  for (const batch of batches) {
    for (const event of batch.events) {
      const events = (rooms[event.room] ??= new Map());
      events.set(event.id, event);
    }
  }
  return Object.fromEntries(Object.entries(rooms)
    .map(([room, events]) => [room, [...events.values()].sort((a, b) => a.seq - b.seq)]));
}

function types(events) {
  return events.map((e) => e.type);
}

async function waitFor(condition, what) {
  for (let tries = 0; tries < 600; tries += 1) {
    if (condition()) return;
    await sleep(100);
  }
  assert.fail(`never saw ${what}`);
}

test('a webhook URL without WEBHOOK_SECRET fails closed: every room answers 503 naming it', async () => {
  const misconfigured = new DevServer({
    vars: { ROOM_SETTINGS: JSON.stringify({ webhooks: { url: 'https://example.com/hooks' } }) },
  });
  try {
    await misconfigured.start();
    const response = await fetch(`${misconfigured.httpUrl}/rooms/lobby/topic/chat`, { method: 'POST', body: 'hi' });
    const text = await response.text();
    assert.equal(response.status, 503);
    assert.match(text, /WEBHOOK_SECRET/);
  } finally {
    await misconfigured.stop();
    misconfigured.cleanup();
  }
});
