// The README's examples, taken from the README itself and run as a reader would: the Node client
// saved in the checkout and run with the Node people have (Debian's, 20), the Spring settings
// merged into wrangler.toml as the README says, and the counters it shows for a room.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import WebSocket from 'ws';
import { Client } from '@stomp/stompjs';
import { DevServer, useServer } from './harness.mjs';
import { ROOT, Spawned } from './spawned.mjs';
import { connect } from './stomp.mjs';

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const server = useServer();
const made = [];
after(() => { for (const path of made) rmSync(path, { force: true }); });

/** The text of a README section: from its heading to the next heading of its level or above. */
function section(heading) {
  const start = README.indexOf(`\n${heading}\n`);
  assert.ok(start >= 0, `the README has a section "${heading}"`);
  const level = heading.match(/^#+/)[0].length;
  const rest = README.slice(start + heading.length + 2);
  const end = rest.search(new RegExp(`^#{1,${level}} `, 'm'));
  return end < 0 ? rest : rest.slice(0, end);
}

/** The fenced blocks of one language in a README section, in order. */
const blocks = (heading, language) => [...section(heading).matchAll(new RegExp(`\`\`\`${language}\\n([\\s\\S]*?)\`\`\``, 'g'))]
  .map((match) => match[1]);

test('the Node client of "Connecting a client", saved as client.mjs in the checkout, runs with Debian\'s Node (20) and talks to a room', async () => {
  const [snippet] = blocks('## Connecting a client', 'js');
  assert.match(snippet, /ws:\/\/127\.0\.0\.1:8787\/rooms\/lobby/);
  const room = `readme-client-${process.pid}`;
  mkdirSync(join(ROOT, 'test-output'), { recursive: true });
  const path = join(ROOT, 'test-output', `client-${process.pid}.mjs`);
  writeFileSync(path, snippet.replaceAll('ws://127.0.0.1:8787/rooms/lobby', `${server.wsUrl}/rooms/${room}`));
  made.push(path);
  const node = existsSync('/usr/bin/node') ? '/usr/bin/node' : process.execPath;
  const client = new Spawned(node, [path]);
  try {
    await client.waitFor(/^chat: hello, room$/m);
    await client.waitFor(/^presence: \{[\s\S]*type: 'members'/m);
  } finally {
    await client.stop();
  }
});

test('the Spring settings of "Coming from Spring", merged into wrangler.toml as the README says, serve a Spring tutorial\'s client', async () => {
  const [endpointLine, workerFirstLine, tables] = blocks('## Coming from Spring', 'toml');
  const original = readFileSync(join(ROOT, 'wrangler.toml'), 'utf8');
  assert.match(original, /^endpoints = \[\]$/m, 'wrangler.toml has the line the README says to change');
  assert.match(original, /^run_worker_first = .*$/m, 'wrangler.toml has the run_worker_first line the README says to replace');
  const merged = `${original.replace(/^endpoints = \[\]$/m, endpointLine.trim())
    .replace(/^run_worker_first = .*$/m, workerFirstLine.trim())}\n${tables}`;
  const config = join(ROOT, `.readme-spring-${process.pid}.toml`);
  writeFileSync(config, merged);
  made.push(config);
  const spring = new DevServer({ config });
  try {
    await spring.start();
    const info = await fetch(`${spring.httpUrl}/ws-stomp/info`);
    assert.equal(info.status, 200);
    const client = new Client({ webSocketFactory: () => new WebSocket(`${spring.wsUrl}/ws-stomp`, ['v12.stomp']), reconnectDelay: 0 });
    const received = new Promise((resolve) => {
      client.onConnect = () => {
        client.subscribe('/sub/chat/room/42', (message) => resolve(JSON.parse(message.body)));
        client.publish({ destination: '/pub/chat/message', body: JSON.stringify({ type: 'TALK', roomId: '42', message: 'hi' }) });
      };
    });
    client.activate();
    assert.equal((await received).message, 'hi', 'routed by the template to the room its body names');
    await client.deactivate();
  } finally {
    await spring.stop();
    spring.cleanup();
  }
});

/** Every key path in a JSON value: `held.stored_bytes`, … */
const keyPaths = (value, prefix = '') => Object.entries(value).flatMap(([key, inner]) => (
  inner && typeof inner === 'object' ? keyPaths(inner, `${prefix}${key}.`) : [`${prefix}${key}`]));

test('the counters "A room\'s counters" shows are the fields a room answers /stats with', async () => {
  const [shown] = blocks('### A room\'s counters', 'json');
  const room = `readme-stats-${process.pid}`;
  const client = await connect(`${server.wsUrl}/rooms/${room}`, { login: 'x' });
  await client.publishConfirmed('/topic/chat', 'hello');
  const stats = await (await fetch(`${server.httpUrl}/rooms/${room}/stats`)).json();
  assert.deepEqual(keyPaths(JSON.parse(shown)).sort(), keyPaths(stats).sort());
  const table = section('### A room\'s counters');
  for (const field of Object.keys(stats)) assert.match(table, new RegExp(`^\\| \`${field}\` \\|`, 'm'), `the table explains ${field}`);
  await client.disconnect();
});
