// What an operator asks of a running Worker, against the real build: GET /healthz (the Worker
// and its settings are good, and what they leave open) and GET /rooms (the active rooms with
// their connections, behind the credentials a room asks for).

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, test } from 'node:test';
import { DevServer } from './harness.mjs';
import { request, until } from './http.mjs';
import { connect } from './stomp.mjs';
import { signToken } from '../../scripts/token.mjs';

const SECRET = randomBytes(24).toString('base64url');
const servers = [];
after(async () => {
  for (const server of servers) {
    await server.stop();
    server.cleanup();
  }
});

/** A wrangler dev with these vars, stopped after the file's tests. */
async function serve(vars) {
  const server = new DevServer({ vars });
  servers.push(server);
  await server.start();
  return server;
}

const token = (sub, extra = {}) => {
  const now = Math.floor(Date.now() / 1000);
  return signToken({ sub, iat: now, exp: now + 300, ...extra }, { secret: SECRET });
};

test('an open Worker is healthy and says its rooms are open to anyone; GET /rooms lists the rooms holding sockets, with counts', async () => {
  const server = await serve({});
  const health = await request(`${server.httpUrl}/healthz`);
  assert.equal(health.status, 200);
  assert.equal(health.json.status, 'ok');
  assert.equal(health.json.rooms, 'open');
  assert.match(health.json.warnings.join('\n'), /rooms are open to anyone: set STOMP_JWT_SECRET, STOMP_JWT_KEYS or STOMP_USERS/);
  assert.match(health.json.warnings.join('\n'), /allowed_origins is empty/);

  const url = (room) => `${server.wsUrl}/rooms/${room}`;
  const clients = [await connect(url('list-a')), await connect(url('list-a')), await connect(url('list-b'))];
  const listed = async () => (await request(`${server.httpUrl}/rooms`)).json;
  await until(async () => (await listed()).rooms.length === 2, 'two rooms listed');
  assert.deepEqual((await listed()).rooms.map(({ room, connections }) => [room, connections]), [['list-a', 2], ['list-b', 1]]);
  assert.ok((await listed()).rooms.every((row) => row.active_since <= Date.now()));

  await clients[2].disconnect();
  await until(async () => (await listed()).rooms.length === 1, 'list-b gone once empty');
  await clients[1].disconnect();
  await until(async () => (await listed()).rooms[0]?.connections === 1, 'list-a down to one connection');
  assert.deepEqual((await listed()).rooms.map(({ room, connections }) => [room, connections]), [['list-a', 1]]);
  await clients[0].disconnect();
  await until(async () => (await listed()).rooms.length === 0, 'no rooms once all have left');
  assert.equal((await request(`${server.httpUrl}/rooms`, { method: 'POST' })).status, 405);
});

test('a secured Worker lists rooms only to credentials a room takes, each token its own rooms; origins it does not allow are refused', async () => {
  const server = await serve({
    STOMP_JWT_SECRET: SECRET,
    STOMP_USERS: JSON.stringify({ carol: 'carol-pass' }),
    ROOM_SETTINGS: JSON.stringify({ allowed_origins: ['https://chat.example'] }),
  });
  const health = await request(`${server.httpUrl}/healthz`);
  assert.equal(health.status, 200);
  assert.deepEqual([health.json.rooms, health.json.tokens, health.json.logins], ['secured', true, true]);
  assert.deepEqual(health.json.warnings, [], 'nothing left open');

  const joined = [];
  for (const room of ['team-red', 'team-blue', 'lobby']) {
    joined.push(await connect(`${server.wsUrl}/rooms/${room}`, { connectHeaders: { Authorization: `Bearer ${token('ops')}` } }));
  }
  const rooms = async (headers) => request(`${server.httpUrl}/rooms`, { headers });
  await until(async () => (await rooms({ Authorization: `Bearer ${token('ops')}` })).json.rooms.length === 3, 'three rooms');

  const anonymous = await rooms({});
  assert.equal(anonymous.status, 401);
  assert.match(anonymous.text, /^authentication failed: listing rooms takes a token/);
  assert.equal((await rooms({ Authorization: `Bearer ${signToken({ sub: 'x', exp: 2e9 }, { secret: 'wrong' })}` })).status, 401);
  const team = await rooms({ Authorization: `Bearer ${token('red', { rooms: ['team-*'] })}` });
  assert.deepEqual(team.json.rooms.map((row) => row.room), ['team-blue', 'team-red'], 'a token sees the rooms it may join');
  const carol = await rooms({ Authorization: `Basic ${Buffer.from('carol:carol-pass').toString('base64')}` });
  assert.deepEqual(carol.json.rooms.map((row) => row.room), ['lobby', 'team-blue', 'team-red']);
  const elsewhere = await rooms({ Authorization: `Bearer ${token('ops')}`, Origin: 'https://evil.example' });
  assert.equal(elsewhere.status, 403);
  for (const client of joined) await client.disconnect();
});

test('settings that cannot be read make /healthz answer 503 naming what to fix and where it was set', async () => {
  const server = await serve({ ROOM_SETTINGS: JSON.stringify({ auth: { audiance: 'typo' } }), STOMP_USERS: 'not json' });
  const health = await request(`${server.httpUrl}/healthz`);
  assert.equal(health.status, 503);
  assert.equal(health.json.status, 'misconfigured');
  assert.match(health.json.problem, /^ROOM_SETTINGS is invalid \(unknown field `audiance`.*\); fix it where that JSON string is set \(a --var/);
  assert.doesNotMatch(health.json.problem, /wrangler\.toml/, 'it came from --var, not the file');

  await server.stop();
  server.vars = { STOMP_USERS: 'not json' };
  await server.start();
  const users = await request(`${server.httpUrl}/healthz`);
  assert.equal(users.status, 503);
  assert.match(users.json.problem, /^STOMP_USERS is not a JSON object of login -> passcode .*; every connection is refused until it is fixed$/);
});
