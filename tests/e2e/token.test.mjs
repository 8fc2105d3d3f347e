// `npm run token` (scripts/token.mjs) against the real build: a token it mints from the
// configured secret or key is accepted by a room, with the rooms and grants asked for, and one
// minted from any other secret is refused.

import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { useServer } from './harness.mjs';
import { run, Spawned } from './spawned.mjs';
import { connect } from './stomp.mjs';
import { readDevVars } from '../../scripts/token.mjs';

const SECRET = randomBytes(24).toString('base64url');
const ISSUER = 'https://auth.token-test';
const KID = 'token-test-1';
const ecKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const scratch = mkdtempSync(join(tmpdir(), 'stomp-rooms-token-'));
const privatePem = join(scratch, 'private.pem');
writeFileSync(privatePem, ecKey.privateKey.export({ format: 'pem', type: 'pkcs8' }));

const server = useServer({
  vars: {
    STOMP_JWT_SECRET: SECRET,
    STOMP_JWT_KEYS: JSON.stringify({ keys: [{ ...ecKey.publicKey.export({ format: 'jwk' }), kid: KID }] }),
    ROOM_SETTINGS: JSON.stringify({ auth: { issuer: ISSUER } }),
  },
});

const roomUrl = (room) => `${server.wsUrl}/rooms/${room}`;

/** Runs `npm run --silent token -- ...args`, with STOMP_JWT_SECRET as given (unset: undefined). */
async function mint(args, secret = SECRET) {
  const minted = await run('npm', ['run', '--silent', 'token', '--', ...args], { env: { STOMP_JWT_SECRET: secret } });
  assert.equal(minted.code, 0, `npm run token failed:\n${minted.stderr}`);
  const lines = minted.stdout.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, `stdout is the token alone, for TOKEN=$(...): ${JSON.stringify(minted.stdout)}`);
  return { token: lines[0], said: minted.stderr };
}

const bearer = (token) => ({ connectHeaders: { Authorization: `Bearer ${token}` } });

test('a token minted from the configured secret joins the rooms it names as its verified login, and no other room', async () => {
  const { token, said } = await mint(['alice', '--rooms', 'tok-*', '--issuer', ISSUER, '--ttl', '10m']);
  assert.match(said, /alice \(HS256\), rooms: tok-\*, subscribe: any, publish: any, expires /);
  const alice = await connect(roomUrl('tok-lobby'), bearer(token));
  const presence = alice.subscribe('/presence');
  const [members] = await presence.atLeast(1);
  assert.deepEqual(JSON.parse(members.body).members.map((m) => [m.login, m.verified]), [['alice', true]]);
  await alice.disconnect();

  const elsewhere = await connect(roomUrl('other-room'), bearer(token)).catch((error) => error);
  assert.equal(elsewhere.frame?.headers.message, 'authentication failed');
  assert.match(elsewhere.frame.body, /token does not allow room other-room/);
});

test('a token minted from another secret is refused', async () => {
  const { token } = await mint(['mallory', '--issuer', ISSUER], 'not-the-secret');
  const refused = await connect(roomUrl('tok-lobby'), bearer(token)).catch((error) => error);
  assert.equal(refused.frame?.headers.message, 'authentication failed');
  assert.match(refused.frame.body, /bad token signature/);
});

test('a read-only token may read and not send; an ES256 token signed with --key is accepted', async () => {
  const { token: readOnly } = await mint(['reader', '--issuer', ISSUER, '--read-only']);
  const reader = await connect(roomUrl('tok-read'), bearer(readOnly));
  reader.publish('/topic/chat', 'may I?');
  const [error] = await reader.errors.atLeast(1);
  assert.equal(error.headers.message, 'permission denied');

  const { token: signed, said } = await mint(['erin', '--issuer', ISSUER, '--key', privatePem, '--kid', KID], undefined);
  assert.match(said, /erin \(ES256\)/);
  const erin = await connect(roomUrl('tok-read'), bearer(signed));
  await erin.publishConfirmed('/topic/chat', 'signed with a private key');
  await erin.disconnect();
});

test('without a key the minter says where to put one, and reads .dev.vars as wrangler does', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'stomp-rooms-devvars-'));
  writeFileSync(join(dir, '.dev.vars'), '# local secrets\nSTOMP_JWT_SECRET="quoted secret"\nSTOMP_USERS={"carol":"pass"}\n');
  assert.deepEqual(readDevVars(join(dir, '.dev.vars')), { STOMP_JWT_SECRET: 'quoted secret', STOMP_USERS: '{"carol":"pass"}' });

  const { existsSync } = await import('node:fs');
  const { ROOT } = await import('./spawned.mjs');
  if (existsSync(join(ROOT, '.dev.vars'))) return t.skip('this checkout has a .dev.vars, which the minter would read');
  const minter = new Spawned('npm', ['run', '--silent', 'token', '--', 'alice'], { env: { STOMP_JWT_SECRET: undefined } });
  minter.child.stdin.end();
  assert.equal(await minter.exit(), 1);
  assert.equal(minter.stdout, '', 'no token printed');
  assert.match(minter.stderr, /Set STOMP_JWT_SECRET .* \.dev\.vars .*--key/);
});

test('the terminal client joins a secured room with a minted token', async () => {
  const { token } = await mint(['tess', '--issuer', ISSUER, '--rooms', 'tok-terminal']);
  const sam = await connect(roomUrl('tok-terminal'), bearer((await mint(['sam', '--issuer', ISSUER])).token));
  const heard = sam.subscribe('/topic/chat');
  const terminal = new Spawned('npm', ['run', '--silent', 'chat', '--', 'tok-terminal', '--url', server.httpUrl, '--token', token]);
  try {
    await terminal.waitFor(/joined tok-terminal/, 'stderr');
    terminal.child.stdin.end('signed from a terminal\n');
    const [message] = await heard.atLeast(1);
    assert.equal(message.body, 'signed from a terminal');
    assert.equal(message.headers.sender, 'tess');
    assert.equal(message.headers['sender-verified'], 'true');
    assert.equal(await terminal.exit(), 0);
  } finally {
    await terminal.stop();
    await sam.disconnect();
  }
});
