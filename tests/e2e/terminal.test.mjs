// The terminal client (`npm run chat -- <room>`, scripts/chat.mjs) against the real build: it
// shows history and live messages from other clients, and what is typed on its stdin reaches
// them.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { useServer } from './harness.mjs';
import { request } from './http.mjs';
import { Spawned } from './spawned.mjs';
import { connect } from './stomp.mjs';

const server = useServer();
const TIME = String.raw`\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}\]`;

test('the terminal client prints history and live messages, sends what is typed, and leaves at the end of input', async () => {
  const room = `terminal-${process.pid}`;
  const sam = await connect(`${server.wsUrl}/rooms/${room}`, { login: 'Sam' });
  await sam.publishConfirmed('/topic/chat', 'before the terminal came');
  const heard = sam.subscribe('/topic/chat');
  const presence = sam.subscribe('/presence');

  const terminal = new Spawned('npm', ['run', '--silent', 'chat', '--', room, '--url', server.httpUrl, '--name', 'Tess']);
  try {
    await terminal.waitFor(new RegExp(`joined ${room} at ${server.httpUrl}`), 'stderr');
    await terminal.waitFor(new RegExp(`^${TIME} Sam \\(unverified\\): before the terminal came$`, 'm'));
    await terminal.waitFor(/^\* here: .*Sam \(unverified\)/m, 'stderr');
    await presence.atLeast(2); // the snapshot, then Tess joining

    terminal.child.stdin.write('hello from the terminal\n');
    const [fromTerminal] = await heard.atLeast(1);
    assert.equal(fromTerminal.body, 'hello from the terminal');
    assert.equal(fromTerminal.headers['sender-name'], 'Tess');
    assert.equal(fromTerminal.headers['sender-verified'], undefined, 'a claimed name is never verified');

    sam.publish('/topic/chat', 'hello, terminal');
    await terminal.waitFor(new RegExp(`^${TIME} Sam \\(unverified\\): hello, terminal$`, 'm'));
    const posted = await request(`${server.httpUrl}/rooms/${room}/topic/chat`, { method: 'POST', body: 'from curl' });
    assert.equal(posted.status, 201);
    await terminal.waitFor(new RegExp(`^${TIME} someone over HTTP \\(unverified\\): from curl$`, 'm'));

    terminal.child.stdin.end('one more, then end of input\n');
    assert.equal(await terminal.exit(), 0, 'end of input leaves the room');
    const bodies = (await heard.atLeast(4)).map((message) => message.body);
    assert.deepEqual(bodies.slice(-1), ['one more, then end of input'], 'a line piped before the end is sent before leaving');
    assert.equal(terminal.stdout.match(/hello from the terminal/g)?.length, 1, 'its own message shown once');
  } finally {
    await terminal.stop();
    await sam.disconnect();
  }
});

test('the terminal client says when the Worker cannot be reached', async () => {
  const terminal = new Spawned('npm', ['run', '--silent', 'chat', '--', 'lobby', '--url', 'http://127.0.0.1:9']);
  try {
    await terminal.waitFor(/cannot reach ws:\/\/127\.0\.0\.1:9\/rooms\/lobby .*Is the Worker running there \(npm start\)\?/, 'stderr');
  } finally {
    await terminal.stop();
  }
});
