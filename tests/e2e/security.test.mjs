// Signed tokens, permissions and the Origin allow-list, against the real build. The keys are made
// here: an HS256 secret and an EC P-256 key pair, given to the server as STOMP_JWT_SECRET and
// STOMP_JWT_KEYS (a JWK Set); the tokens are minted here with node:crypto alone, as a backend would.
// Every room needs a token (or a STOMP_USERS login) on this server. Each test uses its own rooms.
// The last tests open the chat page itself in Chromium (browser.mjs) against this server.

import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { after, test } from 'node:test';
import WebSocket from 'ws';
import { launchChromium, memberNames, messageTexts, openPage, say, submitJoin, waitForText } from './browser.mjs';
import { useServer } from './harness.mjs';
import { TestSocket } from './sockets.mjs';
import { connect, sleep } from './stomp.mjs';

const ISSUER = 'https://auth.example';
const AUDIENCE = 'stomp-rooms';
const SECRET = randomBytes(32).toString('base64url');
const KID = 'e2e-1';
const ecKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const strangerKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });

const server = useServer({
  vars: {
    STOMP_JWT_SECRET: SECRET,
    STOMP_JWT_KEYS: JSON.stringify({ keys: [{ ...ecKey.publicKey.export({ format: 'jwk' }), kid: KID, alg: 'ES256' }] }),
    STOMP_USERS: JSON.stringify({ carol: 'carol-pass' }),
    ROOM_SETTINGS: JSON.stringify({
      auth: { issuer: ISSUER, audience: AUDIENCE, leeway_s: 0 },
      // The page this server serves opens its sockets from its own origin, which is never
      // cross-site: the browser tests below rely on that, with no entry for it here.
      allowed_origins: ['https://chat.example', 'https://*.example.com'],
    }),
  },
});

// --- Minting tokens -------------------------------------------------------------------------

const b64url = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

/** Claims the server accepts, for `sub`; `extra` adds or overrides (undefined removes). */
const claims = (sub, extra = {}) => ({ sub, iss: ISSUER, aud: AUDIENCE, iat: now(), exp: now() + 300, ...extra });

function hmacToken(payload, { secret = SECRET, hash = 'sha256', header = { alg: 'HS256', typ: 'JWT' } } = {}) {
  const input = `${b64url(header)}.${b64url(payload)}`;
  return `${input}.${createHmac(hash, secret).update(input).digest('base64url')}`;
}

const hs256 = (payload, options) => hmacToken(payload, options);

function es256(payload, { key = ecKey.privateKey, header = { alg: 'ES256', typ: 'JWT', kid: KID } } = {}) {
  const input = `${b64url(header)}.${b64url(payload)}`;
  const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}

/** CONNECT headers carrying a token the way stomp.js users are told to. */
const bearer = (token) => ({ connectHeaders: { Authorization: `Bearer ${token}` } });

let roomCounter = 0;
const roomName = (name) => `${name}-${process.pid}-${++roomCounter}`;
const roomUrl = (room) => `${server.wsUrl}/rooms/${room}`;

/** Connects, expecting the server to refuse: returns the ERROR frame, after the socket closed
 * (code 1008, policy violation). */
async function refusal(url, options) {
  const outcome = await connect(url, options).then(
    async (client) => {
      await client.disconnect();
      return null;
    },
    (error) => error,
  );
  assert.ok(outcome, 'connected, but should have been refused');
  assert.ok(outcome.frame, `refused with an ERROR frame, not: ${outcome.message}`);
  const [closed] = await outcome.closes.atLeast(1);
  assert.equal(closed.code, 1008);
  return outcome.frame;
}

/** Waits for a connected client's ERROR frame, and for its socket to close (code 1008);
 * returns the frame. */
async function errorOf(client) {
  const [error] = await client.errors.atLeast(1);
  const [closed] = await client.closes.atLeast(1);
  assert.equal(closed.code, 1008);
  assert.equal(client.connected, false);
  return error;
}

// --- Raw WebSockets with request headers (here: Origin) -------------------------------------

/** Opens a `ws` socket with extra request headers: resolves with { socket } once open, or with
 * { status, contentType, body } when the server answers the upgrade with plain HTTP. */
function openRaw(url, headers = {}) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const ws = new WebSocket(url, ['v12.stomp'], { headers });
    const socket = new TestSocket(ws);
    ws.once('open', () => { settled = true; resolve({ socket }); });
    ws.once('unexpected-response', (_request, response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk) => { body += chunk; });
      response.on('end', () => {
        settled = true;
        resolve({ status: response.statusCode, contentType: response.headers['content-type'], body });
        ws.terminate();
      });
    });
    ws.on('error', (error) => { if (!settled) reject(error); });
  });
}

const connectFrame = (headers = {}) =>
  `CONNECT\naccept-version:1.2\nhost:x\n${Object.entries(headers).map(([k, v]) => `${k}:${v}\n`).join('')}\n\0`;

// --- Tokens that are accepted ---------------------------------------------------------------

test('an HS256 token (Authorization: Bearer, or as passcode) connects, and its sub is the verified sender others see', async () => {
  const url = roomUrl(roomName('hs256'));
  const alice = await connect(url, bearer(hs256(claims('alice'))));
  const bob = await connect(url, { login: 'anything', passcode: hs256(claims('bob')) });
  const chat = bob.subscribe('/topic/chat');
  const toAlice = alice.subscribe('/user/queue/inbox');
  await Promise.all([alice, bob].map((c) => c.withReceipt((h) => c.subscribe('/topic/sync', h))));

  // The room stamps who sent it; headers a client makes up are not taken.
  await alice.publishConfirmed('/topic/chat', 'hello', { sender: 'mallory', 'sender-name': 'mallory' });
  const [message] = await chat.atLeast(1);
  assert.equal(message.body, 'hello');
  assert.equal(message.headers.sender, 'alice');
  assert.equal(message.headers['sender-verified'], 'true');
  assert.notEqual(message.headers['sender-name'], 'mallory');

  // The token's login is an address: /user/alice reaches her, from the passcode-token sender bob.
  await bob.publishConfirmed('/user/alice/queue/inbox', 'psst');
  const [whisper] = await toAlice.atLeast(1);
  assert.equal(whisper.body, 'psst');
  assert.equal(whisper.headers.sender, 'bob');
  assert.equal(whisper.headers['sender-verified'], 'true');

  // Presence says who is verified.
  const presence = bob.subscribe('/presence');
  const [snapshot] = await presence.atLeast(1);
  const members = JSON.parse(snapshot.body).members;
  const session = alice.connectedFrame.headers.session;
  assert.deepEqual(members.find((m) => m.session === session), { session, login: 'alice', verified: true });
  await Promise.all([alice.disconnect(), bob.disconnect()]);
});

test('an ES256 token (aud given as an array) connects, and its sub is the verified sender', async () => {
  const url = roomUrl(roomName('es256'));
  const dave = await connect(url, bearer(es256(claims('dave', { aud: ['another-service', AUDIENCE] }))));
  const erin = await connect(url, bearer(es256(claims('erin'))));
  const chat = erin.subscribe('/topic/chat');
  await erin.withReceipt((h) => erin.subscribe('/topic/sync', h));
  await dave.publishConfirmed('/topic/chat', 'signed with EC');
  const [message] = await chat.atLeast(1);
  assert.equal(message.headers.sender, 'dave');
  assert.equal(message.headers['sender-verified'], 'true');
  await Promise.all([dave.disconnect(), erin.disconnect()]);
});

test('a STOMP_USERS login still works where tokens are required, and is verified too', async () => {
  const url = roomUrl(roomName('users'));
  const carol = await connect(url, { login: 'carol', passcode: 'carol-pass' });
  const reader = await connect(url, bearer(hs256(claims('reader'))));
  const chat = reader.subscribe('/topic/chat');
  await reader.withReceipt((h) => reader.subscribe('/topic/sync', h));
  await carol.publishConfirmed('/topic/chat', 'password login');
  const [message] = await chat.atLeast(1);
  assert.equal(message.headers.sender, 'carol');
  assert.equal(message.headers['sender-verified'], 'true');
  const error = await refusal(url, { login: 'carol', passcode: 'wrong' });
  assert.equal(error.headers.message, 'authentication failed');
  await Promise.all([carol.disconnect(), reader.disconnect()]);
});

test('the rooms claim admits the rooms it names (team-* matches team-red-…) and refuses others, naming the room', async () => {
  const token = hs256(claims('tess', { rooms: ['lobby', 'team-*'] }));
  const allowed = await connect(roomUrl(roomName('team-red')), bearer(token));
  assert.ok(allowed.connected);
  await allowed.disconnect();
  const other = roomName('other');
  const error = await refusal(roomUrl(other), bearer(token));
  assert.equal(error.headers.message, 'authentication failed');
  assert.match(error.body, new RegExp(`token does not allow room ${other}`));
});

// --- Tokens that are refused ----------------------------------------------------------------

test('bad or missing tokens are refused at CONNECT with "authentication failed" and a body saying why', async () => {
  const url = roomUrl(roomName('refused'));
  const publicPem = ecKey.publicKey.export({ type: 'spki', format: 'pem' });
  const cases = [
    ['expired', bearer(hs256(claims('x', { exp: now() - 60 }))), /token expired/],
    ['not yet valid (nbf in the future)', bearer(hs256(claims('x', { nbf: now() + 600 }))), /token not yet valid/],
    ['HS256 signed with another secret', bearer(hs256(claims('x'), { secret: 'not-the-secret' })), /bad token signature/],
    ['ES256 signed by another key', bearer(es256(claims('x'), { key: strangerKey.privateKey })), /bad token signature/],
    ['alg none, empty signature', bearer(`${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims('x'))}.`),
      /token algorithm "none" is not accepted/],
    ['alg HS512', bearer(hmacToken(claims('x'), { hash: 'sha512', header: { alg: 'HS512', typ: 'JWT' } })),
      /token algorithm "?HS512"? is not accepted/],
    ['HS256 signature under a header saying ES256 (algorithm confusion)',
      bearer(hs256(claims('x'), { header: { alg: 'ES256', typ: 'JWT', kid: KID } })), /bad token signature|malformed token/],
    ['HS256 keyed with the EC public key (algorithm confusion)', bearer(hs256(claims('x'), { secret: publicPem })),
      /bad token signature/],
    ['wrong audience', bearer(hs256(claims('x', { aud: 'another-service' }))), /token audience/],
    ['wrong issuer', bearer(hs256(claims('x', { iss: 'https://evil.example' }))), /token issuer/],
    ['no exp claim', bearer(hs256(claims('x', { exp: undefined }))), /exp/],
    ['not a JWT', bearer('not-a-jwt'), /malformed token/],
    ['as passcode, expired', { login: 'x', passcode: hs256(claims('x', { exp: now() - 60 })) }, /token expired/],
    ['no token at all', {}, /this room requires a token/],
  ];
  for (const [name, options, reason] of cases) {
    const error = await refusal(url, options);
    assert.equal(error.headers.message, 'authentication failed', name);
    assert.match(error.body, reason, name);
  }
});

// --- Permissions ----------------------------------------------------------------------------

test('a read-only token (publish: []) subscribes and receives, but its SEND is refused naming the rule; so is a SEND or SUBSCRIBE outside the token\'s patterns', async () => {
  const url = roomUrl(roomName('perms'));
  const listener = await connect(url, bearer(hs256(claims('listener'))));
  const reader = await connect(url, bearer(hs256(claims('reader', { publish: [], subscribe: ['/topic/**'] }))));
  const writer = await connect(url, bearer(hs256(claims('writer', { publish: ['/topic/chat'] }))));
  const heard = listener.subscribe('/topic/chat');
  const news = listener.subscribe('/topic/news');
  const read = reader.subscribe('/topic/chat');
  await Promise.all([listener, reader].map((c) => c.withReceipt((h) => c.subscribe('/topic/sync', h))));

  await writer.publishConfirmed('/topic/chat', 'from the writer');
  assert.deepEqual((await read.atLeast(1)).map((m) => m.body), ['from the writer'], 'the read-only token receives');

  reader.publish('/topic/chat', 'may I?');
  const readOnly = await errorOf(reader);
  assert.equal(readOnly.headers.message, 'permission denied');
  assert.match(readOnly.body, /SEND to \/topic\/chat is not allowed/);
  assert.match(readOnly.body, /publish/);

  writer.publish('/topic/news', 'off the list');
  const offList = await errorOf(writer);
  assert.equal(offList.headers.message, 'permission denied');
  assert.match(offList.body, /SEND to \/topic\/news is not allowed/);
  assert.match(offList.body, /\/topic\/chat/, 'the body names what the token allows');

  const narrow = await connect(url, bearer(hs256(claims('narrow', { subscribe: ['/topic/chat'] }))));
  narrow.subscribe('/queue/jobs');
  const subscribeDenied = await errorOf(narrow);
  assert.equal(subscribeDenied.headers.message, 'permission denied');
  assert.match(subscribeDenied.body, /\/queue\/jobs/);
  assert.match(subscribeDenied.body, /subscribe/i);

  // Nothing refused was delivered, and the room kept serving the others.
  await listener.publishConfirmed('/topic/chat', 'still here');
  assert.deepEqual((await heard.atLeast(2)).map((m) => m.body), ['from the writer', 'still here']);
  assert.equal(heard.items.length, 2);
  assert.equal(news.items.length, 0);
  await listener.disconnect();
});

test('a token that expires on a live connection gets "token expired" at exp (leeway 0) and is closed', async () => {
  const url = roomUrl(roomName('expiring'));
  const exp = now() + 3;
  const client = await connect(url, bearer(hs256(claims('brief', { exp }))));
  await client.publishConfirmed('/topic/chat', 'while valid');
  const error = await client.errors.atLeast(1, 8000).then(([frame]) => frame);
  const at = Date.now();
  assert.equal(error.headers.message, 'token expired');
  assert.match(error.body, /reconnect/i, 'the body says to come back with a fresh token');
  assert.ok(at >= exp * 1000 - 500, `not before exp: ${exp * 1000 - at} ms early`);
  const [closed] = await client.closes.atLeast(1, 3000);
  assert.equal(closed.code, 1008);
  assert.equal(client.connected, false);
});

// --- Origins --------------------------------------------------------------------------------

test('an upgrade from an Origin off the allow-list gets HTTP 403 and no WebSocket; listed origins, the server\'s own and no Origin are accepted', async () => {
  const url = roomUrl(roomName('origins'));
  for (const origin of ['https://evil.example', 'https://chat.example.evil.example', 'https://example.com',
    'http://eu.example.com', 'https://eu.example.com.evil.example']) {
    const answer = await openRaw(url, { Origin: origin });
    assert.equal(answer.socket, undefined, `${origin} got a WebSocket`);
    assert.equal(answer.status, 403, origin);
    assert.match(answer.contentType, /text\/plain/, origin);
    assert.ok(answer.body.includes(origin), `the body names ${origin}: ${answer.body}`);
  }
  // Only the room's own address upgrades: not its stats or destinations, whatever the Origin.
  for (const path of ['/stats', '/topic/chat']) {
    const answer = await openRaw(`${url}${path}`, { Origin: 'https://evil.example' });
    assert.equal(answer.socket, undefined, `${path} gave a WebSocket`);
    assert.equal(answer.status, 404, path);
  }
  for (const headers of [{ Origin: 'https://chat.example' }, { Origin: 'https://eu.example.com' }, { Origin: server.httpUrl }, {}]) {
    const { socket, status } = await openRaw(url, headers);
    assert.ok(socket, `${JSON.stringify(headers)} was refused with HTTP ${status}`);
    socket.send(connectFrame({ Authorization: `Bearer ${hs256(claims('origin-check'))}` }));
    assert.match(await socket.nth(0), /^CONNECTED\n/, JSON.stringify(headers));
    socket.send('DISCONNECT\nreceipt:bye\n\n\0');
    await Promise.race([socket.closed, sleep(3000)]);
    socket.ws.terminate();
  }
});

// --- The chat page, in Chromium -------------------------------------------------------------

let browser = null;

after(async () => {
  await browser?.close();
});

/** Opens the chat page at ?room=`room` (and ?token=`token`, if given) in a fresh browser
 * context, so no token is left in sessionStorage from before. */
async function openChatPage(room, token) {
  browser ??= await launchChromium();
  const query = new URLSearchParams({ room, ...(token ? { token } : {}) });
  return openPage(browser, `${server.httpUrl}/?${query}`);
}

const hasClass = (locator, name) => locator.evaluate((element, name) => element.classList.contains(name), name);

test('the page opened with ?token= joins as the token\'s verified sub ("pat") without asking for a name, shows a stomp.js sender as verified, and drops the token from its address', async () => {
  const room = roomName('page-token');
  const patToken = hs256(claims('pat'));
  const quinn = await connect(roomUrl(room), bearer(hs256(claims('quinn'))));
  const chat = quinn.subscribe('/topic/chat'); // where the page publishes
  await quinn.withReceipt((h) => quinn.subscribe('/topic/sync', h));

  const page = await openChatPage(room, patToken);
  const href = await page.evaluate(() => location.href);
  assert.doesNotMatch(href, /token=/, 'the token left the address as the page loaded');
  assert.match(href, new RegExp(`[?&]room=${room}(&|$)`), 'the room stays in the address');
  assert.equal(await page.locator('#token-note').isVisible(), true, 'the join form says the token names you');
  assert.equal(await page.getByLabel('Display name').isVisible(), false, 'no name to type: the token names you');
  assert.equal(await page.getByLabel('Passcode').isVisible(), false);
  await submitJoin(page);
  await page.locator('#status[data-state="live"], #status[data-state="error"]').waitFor();
  assert.equal(await page.locator('#status').getAttribute('data-state'), 'live',
    `the page did not connect: ${await page.locator('#notice').textContent()}`);

  // The page's message reaches a stomp.js client stamped with the token's sub, verified.
  await say(page, 'hello from the page');
  const [fromPage] = await chat.atLeast(1);
  assert.equal(fromPage.body, 'hello from the page');
  assert.equal(fromPage.headers.sender, 'pat', 'the token\'s sub, not the name typed in');
  assert.equal(fromPage.headers['sender-verified'], 'true');

  // The stomp.js client's message shows on the page under its verified login, unmarked.
  await quinn.publishConfirmed('/topic/chat', 'hello from stomp.js');
  await waitForText(page, 'hello from the page');
  await waitForText(page, 'hello from stomp.js');
  assert.deepEqual(await messageTexts(page), ['hello from the page', 'hello from stomp.js']);
  const theirs = page.locator('#messages li', { hasText: 'hello from stomp.js' });
  assert.equal(await theirs.locator('.sender').textContent(), 'quinn');
  assert.equal(await hasClass(theirs.locator('.sender'), 'unverified'), false, 'no "unverified" marker');
  assert.equal(await hasClass(theirs, 'mine'), false);
  const mine = page.locator('#messages li', { hasText: 'hello from the page' });
  assert.equal(await mine.locator('.sender').textContent(), 'pat');
  assert.equal(await hasClass(mine.locator('.sender'), 'unverified'), false);
  assert.equal(await hasClass(mine, 'mine'), true, 'the page knows its verified login as its own');

  // Presence names both by their verified logins.
  await page.locator('#members li', { hasText: 'quinn' }).waitFor();
  assert.deepEqual(await memberNames(page), ['pat', 'quinn']);
  assert.equal(await page.locator('#members li.unverified').count(), 0);

  // Connected, and the token is still out of the address and nowhere on the page.
  assert.doesNotMatch(await page.evaluate(() => location.href), /token=/);
  assert.doesNotMatch(page.url(), /token=/);
  assert.equal((await page.content()).includes(patToken), false, 'the token is not shown');

  await page.context().close();
  await quinn.disconnect();
});

test('the page opened without a token, where rooms need one, tells the chatter how to get in and does not keep reconnecting', async () => {
  const room = roomName('page-no-token');
  const page = await openChatPage(room);
  const sockets = [];
  page.on('websocket', (socket) => sockets.push(socket.url()));
  assert.equal(await page.locator('#token-note').isVisible(), false, 'no token, no note about one');
  await submitJoin(page, 'Nobody');
  await page.locator('#status[data-state="error"]').waitFor();
  // Refused with "authentication failed": told in a chatter's terms, not the room's (which
  // names headers, for developers).
  const refusalText = /^This room is private\. Press Leave, then join with your name and passcode, or open the invitation link you were given\.$/;
  assert.match(await page.locator('#notice').textContent(), refusalText);

  await sleep(3000); // three times the page's reconnect delay
  assert.deepEqual(sockets, [`${server.wsUrl}/rooms/${room}`], 'one attempt, then no reconnecting');
  assert.equal(await page.locator('#status').getAttribute('data-state'), 'error');
  assert.match(await page.locator('#notice').textContent(), refusalText, 'the refusal stays shown');
  await page.context().close();
});

test('the page\'s passcode field joins a room secured with STOMP_USERS as the verified login; a wrong passcode is told plainly', async () => {
  const room = roomName('page-passcode');
  const quinn = await connect(roomUrl(room), bearer(hs256(claims('quinn'))));
  const chat = quinn.subscribe('/topic/chat');
  await quinn.withReceipt((h) => quinn.subscribe('/topic/sync', h));

  const wrong = await openChatPage(room);
  await submitJoin(wrong, 'carol', { passcode: 'not-her-passcode' });
  await wrong.locator('#status[data-state="error"]').waitFor();
  const told = await wrong.locator('#notice').textContent();
  assert.equal(told, 'The room did not accept that name and passcode. Press Leave, then join again with the right ones.');
  assert.doesNotMatch(told, /`|Authorization|Bearer|STOMP_USERS/, 'nothing written for developers');
  await wrong.getByRole('button', { name: 'Leave' }).click();
  await wrong.getByLabel('Passcode').waitFor();
  await submitJoin(wrong, 'carol', { passcode: 'carol-pass' });
  await wrong.locator('#status[data-state="live"]').waitFor();

  await say(wrong, 'hello with a passcode');
  const [message] = await chat.atLeast(1);
  assert.equal(message.headers.sender, 'carol');
  assert.equal(message.headers['sender-verified'], 'true');
  const mine = wrong.locator('#messages li', { hasText: 'hello with a passcode' });
  await mine.waitFor();
  assert.equal(await hasClass(mine.locator('.sender'), 'unverified'), false, 'a passcode login is verified');
  await wrong.context().close();
  await quinn.disconnect();
});
