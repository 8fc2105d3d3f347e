// A token's `rooms` claim through gateway objects: the gateway checks it against the
// endpoint's own room at CONNECT, and each room a socket's frames reach checks it again, by its
// own name (README, "A Spring app's chat rooms, each in its own object").

import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { useServer } from './harness.mjs';
import { connect } from './stomp.mjs';

const SECRET = randomBytes(32).toString('base64url');

const server = useServer({
  vars: {
    STOMP_JWT_SECRET: SECRET,
    ROOM_SETTINGS: JSON.stringify({
      endpoints: ['/ws-stomp'],
      destinations: { topics: ['/sub/'] },
      scaling: { room_destinations: ['/sub/chat/room/{room}'] },
    }),
  },
});

const b64url = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** An HS256 token for `sub` that may join `rooms`. */
function token(sub, rooms) {
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub, iat: now, exp: now + 300, rooms })}`;
  return `${input}.${createHmac('sha256', SECRET).update(input).digest('base64url')}`;
}

const bearer = (jwt) => ({ connectHeaders: { Authorization: `Bearer ${jwt}` } });

test('a token that may not join the endpoint\'s room is refused at CONNECT by the gateway', async () => {
  const refused = await connect(`${server.wsUrl}/ws-stomp`, bearer(token('mallory', ['open-*']))).then(
    () => null,
    (error) => error,
  );
  assert.ok(refused?.frame, 'an ERROR frame');
  assert.equal(refused.frame.command, 'ERROR');
});

test('each chat room checks the token\'s rooms claim by its own name: a granted room serves it, another refuses it', async () => {
  const suffix = `${process.pid}-${Date.now()}`;
  const alice = await connect(`${server.wsUrl}/ws-stomp`, bearer(token('alice', ['ws-stomp', 'open-*'])));
  const granted = alice.subscribe(`/sub/chat/room/open-${suffix}`);
  await alice.withReceipt((h) => alice.subscribe(`/sub/chat/room/open-${suffix}`, { id: 'sync', ...h }));
  await alice.publishConfirmed(`/sub/chat/room/open-${suffix}`, 'in a granted room');
  const [message] = await granted.atLeast(1);
  assert.equal(message.body, 'in a granted room');

  alice.subscribe(`/sub/chat/room/closed-${suffix}`);
  const [error] = await alice.errors.atLeast(1);
  assert.equal(error.command, 'ERROR');
  assert.equal(error.headers.message, 'authentication failed');
  assert.match(error.body, new RegExp(`does not allow room closed-${suffix}`), 'the room checked its own name');
});
