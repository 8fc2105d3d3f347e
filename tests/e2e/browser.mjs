// The chat page in real Chromium for end-to-end tests: Debian's Chromium (or CHROMIUM_PATH),
// driven by playwright-core, and helpers for what a person does on the page and what it shows.

import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Launches a headless Chromium, with these extra command-line flags; the caller closes it. */
export function launchChromium(extraArgs = []) {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', ...extraArgs],
  });
}

/** Opens `url` in a fresh browser context (its own storage), and returns the page. `init`, if
 * given, is a function run in every page of the context before the page's own scripts (e.g. to
 * take WebSocket away). */
export async function openPage(browser, url, viewport = { width: 1000, height: 700 }, { init } = {}) {
  const context = await browser.newContext({ viewport });
  if (init) await context.addInitScript(init);
  const page = await context.newPage();
  await page.goto(url);
  return page;
}

/** Fills in the join form's display name (and passcode, when given) and presses Join (the room
 * is already in the form). With no name, only presses Join (a page opened with a token asks for
 * none). */
export async function submitJoin(page, name, { passcode } = {}) {
  if (name !== undefined) await page.getByLabel('Display name').fill(name);
  if (passcode !== undefined) await page.getByLabel('Passcode').fill(passcode);
  await page.getByRole('button', { name: 'Join' }).click();
}

export async function say(page, text) {
  await page.getByLabel('Message', { exact: true }).fill(text);
  await page.getByLabel('Message', { exact: true }).press('Enter');
}

export const messageTexts = (page) => page.locator('#messages .text').allTextContents();
export const memberNames = (page) => page.locator('#members li').allTextContents();
export const senderNames = (page) => page.locator('#messages .sender').allTextContents();
/** Which transport the page says it uses: 'websocket' or 'sse'. */
export const transportOf = (page) => page.locator('#transport').getAttribute('data-transport');

export async function waitForText(page, text) {
  await page.locator('#messages .text', { hasText: text }).first().waitFor();
}
