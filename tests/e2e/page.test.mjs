// The chat page in real Chromium (Debian's, driven by playwright-core) against the real build.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  launchChromium, memberNames, messageTexts, openPage, say, senderNames, submitJoin, transportOf, waitForText,
} from './browser.mjs';
import { useServer } from './harness.mjs';
import { connect } from './stomp.mjs';

const OUTPUT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test-output');
const server = useServer();
let browser;

before(async () => {
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
});

/** Opens the page in a fresh browser context and joins `room` as `name`. `init`: see openPage. */
async function joinAs(name, room, viewport = { width: 1000, height: 700 }, { init } = {}) {
  const page = await openPage(browser, `${server.httpUrl}/?room=${room}`, viewport, { init });
  await submitJoin(page, name);
  await page.locator('#status[data-state="live"]').waitFor();
  assert.equal(await page.locator('#join').isVisible(), false, 'the join form gives way to the room');
  return page;
}

test('two people chat both ways, presence shows both, another room hears nothing, a late joiner sees history', async () => {
  const room = `page-${process.pid}`;
  const ada = await joinAs('Ada', room);
  const bob = await joinAs('Bob', room);
  const carol = await joinAs('Carol', `${room}-elsewhere`);
  assert.match(ada.url(), new RegExp(`room=${room}`), 'the room is in the address');
  assert.equal(await transportOf(ada), 'websocket', 'a browser with WebSockets uses them');
  assert.equal(await ada.locator('#transport').textContent(), 'WebSocket (STOMP)');
  assert.equal(await ada.locator('#members-note').isVisible(), false);

  await say(ada, 'hello Bob');
  await waitForText(bob, 'hello Bob');
  await say(bob, 'hi Ada');
  await waitForText(ada, 'hi Ada');
  assert.deepEqual(await messageTexts(ada), ['hello Bob', 'hi Ada']);
  assert.deepEqual(await messageTexts(bob), ['hello Bob', 'hi Ada']);
  assert.equal(await bob.locator('#messages li .sender').first().textContent(), 'Ada');
  assert.ok(await bob.locator('#messages time').first().getAttribute('datetime'));

  await ada.locator('#members li', { hasText: 'Bob' }).waitFor();
  assert.deepEqual(await memberNames(ada), ['Ada', 'Bob']);
  assert.deepEqual(await memberNames(bob), ['Ada', 'Bob']);

  await say(carol, 'anyone?');
  await waitForText(carol, 'anyone?');
  assert.deepEqual(await messageTexts(carol), ['anyone?'], 'the other room heard nothing of ours');

  const dan = await joinAs('Dan', room);
  await waitForText(dan, 'hi Ada');
  assert.deepEqual(await messageTexts(dan), ['hello Bob', 'hi Ada'], 'history on joining');
  await ada.locator('#members li', { hasText: 'Dan' }).waitFor();

  for (const page of [ada, bob, carol, dan]) await page.context().close();
});

test('markup in a message renders as text', async () => {
  const room = `xss-${process.pid}`;
  const ada = await joinAs('Ada', room);
  const bob = await joinAs('Bob', room);
  const attacks = ['<script>window.pwned = 1</script>', '<img src=x onerror="window.pwned = 2">'];
  for (const attack of attacks) await say(ada, attack);
  await waitForText(bob, 'onerror');
  assert.deepEqual(await messageTexts(bob), attacks);
  assert.equal(await bob.locator('#messages img, #messages script').count(), 0);
  assert.equal(await bob.evaluate(() => window.pwned), undefined);
  for (const page of [ada, bob]) await page.context().close();
});

test('when WebSocket is unavailable the page falls back to server-sent events and HTTP POST, says so, and chats with a stomp.js client', async () => {
  const room = `sse-${process.pid}`;
  const eve = await connect(`${server.wsUrl}/rooms/${room}`, { login: 'Eve' });
  await eve.publishConfirmed('/topic/chat', 'before you came', { 'content-type': 'text/plain' });
  let inbox;
  await eve.withReceipt((receipt) => { inbox = eve.subscribe('/topic/chat', receipt); });

  // No WebSocket at all: the page goes straight to an event stream.
  const ada = await joinAs('Ada', room, undefined, { init: () => { window.WebSocket = undefined; } });
  assert.equal(await transportOf(ada), 'sse');
  assert.equal(await ada.locator('#transport').textContent(), 'Server-sent events + HTTP POST');
  assert.equal(await ada.locator('#members-note').isVisible(), true, 'presence is shown as unavailable');
  assert.deepEqual(await memberNames(ada), []);
  await waitForText(ada, 'before you came');
  assert.deepEqual(await senderNames(ada), ['Eve'], 'history on joining, with its sender');

  await say(ada, 'hello over HTTP');
  const [fromAda] = await inbox.atLeast(1);
  assert.equal(fromAda.body, 'hello over HTTP');
  assert.equal(fromAda.headers.sender, 'http');
  assert.equal(fromAda.headers['sender-name'], 'Ada');
  assert.equal(fromAda.headers['sender-verified'], undefined);
  await ada.locator('#messages li.mine', { hasText: 'hello over HTTP' }).waitFor();
  assert.equal(await ada.locator('#messages li.mine .sender').textContent(), 'Ada');

  eve.publish('/topic/chat', 'hi Ada, from STOMP', { 'content-type': 'text/plain' });
  await waitForText(ada, 'hi Ada, from STOMP');
  assert.deepEqual(await messageTexts(ada), ['before you came', 'hello over HTTP', 'hi Ada, from STOMP'], 'each once, in order');
  assert.deepEqual(await senderNames(ada), ['Eve', 'Ada', 'Eve']);
  assert.equal(await ada.locator('#messages li.mine').count(), 1, 'only what the page sent is its own');
  assert.equal(await ada.locator('#notice').textContent(), '');

  // A WebSocket whose constructor throws (as for a blocked address): the same fallback.
  const bob = await joinAs('Bob', room, undefined, {
    init: () => {
      window.WebSocket = class {
        constructor() { throw new DOMException('WebSockets are blocked here', 'SecurityError'); }
      };
    },
  });
  assert.equal(await transportOf(bob), 'sse');
  await waitForText(bob, 'hi Ada, from STOMP');
  assert.deepEqual(await messageTexts(bob), ['before you came', 'hello over HTTP', 'hi Ada, from STOMP']);
  await say(bob, 'event streams all round');
  await waitForText(ada, 'event streams all round');
  // Eve hears her own message too: Ada's, Eve's, then Bob's.
  const [, , fromBob] = await inbox.atLeast(3);
  assert.equal(fromBob.body, 'event streams all round');
  assert.equal(fromBob.headers['sender-name'], 'Bob');

  await eve.disconnect();
  for (const page of [ada, bob]) await page.context().close();
});

test('the page reconnects after the server restarts, refuses to send meanwhile, and messages flow again', async () => {
  const room = `restart-${process.pid}`;
  const ada = await joinAs('Ada', room);
  const bob = await joinAs('Bob', room);
  await say(ada, 'before the restart');
  // Both pages show it before the stop: a message sent without a receipt may still be on its
  // way to one page, and in no history yet (group commit), when the runtime stops.
  for (const page of [ada, bob]) await waitForText(page, 'before the restart');

  await server.stop();
  await ada.locator('#status[data-state="reconnecting"]').waitFor();
  await say(ada, 'lost in the tunnel');
  assert.match(await ada.locator('#notice').textContent(), /Not connected/);
  assert.equal(await ada.getByLabel('Message', { exact: true }).inputValue(), 'lost in the tunnel', 'the text is kept');
  await ada.getByLabel('Message', { exact: true }).fill('');
  await server.start();
  await ada.locator('#status[data-state="live"]').waitFor({ timeout: 30_000 });
  await bob.locator('#status[data-state="live"]').waitFor({ timeout: 30_000 });

  await say(bob, 'after the restart');
  await waitForText(ada, 'after the restart');
  assert.deepEqual(await messageTexts(ada), ['before the restart', 'after the restart'], 'no repeats, no gaps');
  for (const page of [ada, bob]) await page.context().close();
});

test('the layout fits a phone, and a screenshot is kept for review', async () => {
  const room = `shot-${process.pid}`;
  const ada = await joinAs('Ada', room);
  const bob = await joinAs('Bob', room, { width: 390, height: 740 });
  await say(ada, 'Welcome to the room, Bob!');
  await say(bob, 'Thanks. This is a phone-sized screen.');
  await say(ada, 'Messages, presence and history all travel over STOMP.');
  await waitForText(bob, 'all travel over STOMP');
  await ada.locator('#members li', { hasText: 'Bob' }).waitFor();
  mkdirSync(OUTPUT, { recursive: true });
  await ada.screenshot({ path: join(OUTPUT, 'chat.png') });
  await bob.screenshot({ path: join(OUTPUT, 'chat-phone.png') });
  const overflow = await bob.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  assert.equal(overflow, false, 'no horizontal scrolling on a phone-sized screen');

  for (const page of [ada, bob]) await page.context().close();
});

test('a reload keeps the person in the room; Leave goes back to the join form', async () => {
  const room = `reload-${process.pid}`;
  const ada = await joinAs('Ada', room);
  await say(ada, 'before the reload');
  await waitForText(ada, 'before the reload');
  await ada.reload();
  await ada.locator('#status[data-state="live"]').waitFor();
  assert.equal(await ada.locator('#join').isVisible(), false, 'no join form after a reload');
  await waitForText(ada, 'before the reload');
  assert.deepEqual(await messageTexts(ada), ['before the reload']);
  await say(ada, 'after the reload');
  await waitForText(ada, 'after the reload');

  await ada.getByRole('button', { name: 'Leave' }).click();
  await ada.locator('#join').waitFor();
  assert.equal(await ada.locator('#chat').isVisible(), false);
  await ada.reload();
  assert.equal(await ada.locator('#join').isVisible(), true, 'left for good: a reload shows the form');
  await ada.context().close();
});

test('a curl POST shows as "someone over HTTP", and messages from another day show their date', async () => {
  const room = `dates-${process.pid}`;
  const posted = await fetch(`${server.httpUrl}/rooms/${room}/topic/chat`, { method: 'POST', body: 'from curl' });
  assert.equal(posted.status, 201);
  const ada = await joinAs('Ada', room);
  await waitForText(ada, 'from curl');
  assert.deepEqual(await senderNames(ada), ['someone over HTTP']);
  const today = ada.locator('#messages time').first();
  assert.match(await today.textContent(), /^\d{2}:\d{2}$/, 'today: the time alone');
  assert.match(await today.getAttribute('title'), /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$/, 'the full date on hover');

  // The same history read two days later: with its date.
  const later = await openPage(browser, `${server.httpUrl}/?room=${room}`);
  await later.clock.setFixedTime(Date.now() + 2 * 86_400_000);
  await submitJoin(later, 'Bob');
  await waitForText(later, 'from curl');
  const stamped = new Date(Number(await later.locator('#messages time').first().evaluate((time) => Date.parse(time.dateTime))));
  const day = stamped.toLocaleDateString('en-GB', { day: 'numeric', month: 'short' });
  assert.match(await later.locator('#messages time').first().textContent(), new RegExp(`^${day}, \\d{2}:\\d{2}$`));
  for (const page of [ada, later]) await page.context().close();
});
