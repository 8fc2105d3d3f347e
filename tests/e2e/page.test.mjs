// The chat page in real Chromium (Debian's, driven by playwright-core) against the real build.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { launchChromium, memberNames, messageTexts, openPage, say, submitJoin, waitForText } from './browser.mjs';
import { useServer } from './harness.mjs';

const OUTPUT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test-output');
const server = useServer();
let browser;

before(async () => {
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
});

/** Opens the page in a fresh browser context and joins `room` as `name`. */
async function joinAs(name, room, viewport = { width: 1000, height: 700 }) {
  const page = await openPage(browser, `${server.httpUrl}/?room=${room}`, viewport);
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

test('the page reconnects after the server restarts, refuses to send meanwhile, and messages flow again', async () => {
  const room = `restart-${process.pid}`;
  const ada = await joinAs('Ada', room);
  const bob = await joinAs('Bob', room);
  await say(ada, 'before the restart');
  await waitForText(bob, 'before the restart');

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
