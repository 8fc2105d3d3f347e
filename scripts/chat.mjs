#!/usr/bin/env node
// A terminal client for one room: joins it over STOMP (stomp.js over the `ws` package, so any
// Node from 18 on works), prints the recent history and then every message as it arrives, and
// sends each line typed (or piped) on stdin. Messages go to stdout, one a line; what happens to
// the connection (joined, who came and went, refusals) goes to stderr.
//
//   npm run chat -- lobby
//   npm run chat -- lobby --url https://stomp-rooms.example.workers.dev --token "$TOKEN"
//
// Run with --help for every option.

import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { Client } from '@stomp/stompjs';
import WebSocket from 'ws';
import { fullTime, senderOf } from '../public/app/names.mjs';

const USAGE = `Usage: npm run chat -- <room> [options]

Joins <room>, prints its last messages and every new one, and sends each line you type.
Ctrl-D (end of input) leaves; piped input is sent, then the client leaves.

Options:
  --url <url>         the Worker: http(s)://host or ws(s)://host; default $STOMP_ROOMS_URL,
                      else http://127.0.0.1:8787 (npm start)
  --name <name>       your display name in an open room (shown as unverified)
  --token <jwt>       a token, for rooms secured with keys (npm run --silent token -- <login>)
  --login <login>     a STOMP_USERS login, with --passcode
  --passcode <code>   its passcode
  --history <n>       how many earlier messages to show on joining; default 20`;

const CHAT = '/topic/chat';

/** The room's WebSocket address from a Worker's address and a room name. */
function roomUrl(base, room) {
  const url = new URL(base);
  url.protocol = { 'http:': 'ws:', 'https:': 'wss:' }[url.protocol] ?? url.protocol;
  url.pathname = `/rooms/${encodeURIComponent(room)}`;
  return url.href;
}

/** What to tell a person the room refused, and what to do about it. */
function refusal(frame) {
  const reason = frame.headers.message ?? 'error';
  const detail = (frame.body ?? '').trim();
  if (reason === 'authentication failed') {
    return `the room did not let you in (${detail}). It is secured: join with --token (npm run --silent token -- <login>) `
      + 'or --login and --passcode.';
  }
  if (reason === 'token expired') return 'your token expired: mint a fresh one and join again.';
  return `${reason}${detail ? `: ${detail}` : ''}`;
}

function main(argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: 'string', default: process.env.STOMP_ROOMS_URL ?? 'http://127.0.0.1:8787' },
      name: { type: 'string' },
      token: { type: 'string' },
      login: { type: 'string' },
      passcode: { type: 'string' },
      history: { type: 'string', default: '20' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || positionals.length !== 1) {
    console.error(USAGE);
    process.exitCode = values.help ? 0 : 2;
    return;
  }
  const [room] = positionals;
  const url = roomUrl(values.url, room);
  const say = (text) => console.error(`* ${text}`);
  const connectHeaders = {
    ...(values.login ?? values.name ? { login: values.login ?? values.name } : {}),
    ...(values.passcode ? { passcode: values.passcode } : {}),
    ...(values.token ? { Authorization: `Bearer ${values.token}` } : {}),
  };
  let lastId = null;
  let inputEnded = false;
  const waiting = []; // lines typed while not connected
  const unconfirmed = new Set(); // receipts of lines sent, not yet stored by the room
  const client = new Client({
    webSocketFactory: () => new WebSocket(url, ['v12.stomp', 'v11.stomp', 'v10.stomp']),
    connectHeaders,
    reconnectDelay: 2000,
    heartbeatIncoming: 10000,
    heartbeatOutgoing: 10000,
  });

  const leaveWhenDone = () => {
    if (inputEnded && waiting.length === 0 && unconfirmed.size === 0) void client.deactivate();
  };
  const send = (line) => {
    const receipt = `line-${Math.random().toString(36).slice(2)}`;
    unconfirmed.add(receipt);
    client.watchForReceipt(receipt, () => {
      unconfirmed.delete(receipt);
      leaveWhenDone();
    });
    client.publish({ destination: CHAT, body: line, headers: { 'content-type': 'text/plain;charset=utf-8', receipt } });
  };

  const input = createInterface({ input: process.stdin });
  client.onConnect = (frame) => {
    everConnected = true;
    const who = frame.headers.session;
    say(`joined ${room} at ${values.url} (session ${who}). Type a line and press Enter to send it; Ctrl-D leaves.`);
    client.subscribe('/presence', (message) => {
      const event = JSON.parse(message.body);
      const label = (member) => `${member.login ?? `guest ${member.session}`}${member.verified ? '' : ' (unverified)'}`;
      if (event.type === 'members') say(`here: ${event.members.map(label).join(', ')}`);
      else if (event.type === 'join' && event.member.session !== who) say(`${label(event.member)} joined`);
      else if (event.type === 'leave') say(`${label(event.member)} left`);
    });
    // After a reconnect, only what was missed.
    const replay = lastId ? { 'replay-after': lastId } : { 'replay-last': values.history };
    client.subscribe(CHAT, (message) => {
      lastId = message.headers['message-id'];
      const sender = senderOf(message.headers);
      const at = new Date(Number(message.headers.timestamp) || Date.now());
      console.log(`[${fullTime(at)}] ${sender.name}${sender.verified ? '' : ' (unverified)'}: ${message.body}`);
    }, replay);
    while (waiting.length > 0) send(waiting.shift());
    leaveWhenDone();
  };
  client.onStompError = (frame) => {
    say(refusal(frame));
    if (['authentication failed', 'token expired'].includes(frame.headers.message)) {
      process.exitCode = 1;
      void client.deactivate(); // the same credentials would only be refused again
      input.close();
    }
  };
  let everConnected = false;
  client.onWebSocketClose = (event) => {
    if (!client.active) return;
    say(everConnected ? `connection closed (${event.code}); reconnecting to ${url}`
      : `cannot reach ${url} (${event.code}); trying again. Is the Worker running there (npm start)?`);
  };

  input.on('line', (line) => {
    if (!line.trim()) return;
    if (client.connected) send(line);
    else waiting.push(line);
  });
  input.on('close', () => {
    inputEnded = true;
    leaveWhenDone();
  });
  client.activate();
}

main(process.argv.slice(2));
