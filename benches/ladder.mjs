// The ladder benchmark's client: one room, one publish rate, one way of receiving per run.
//
//   node benches/ladder.mjs --url http://127.0.0.1:8811
//        --transport short|long|sse|ws|sockjs-ws|sockjs-stream|sockjs-es|sockjs-poll
//        [--receivers 10] [--rate 20] [--seconds 20] [--interval-ms 1000] [--wait-s 25]
//        [--body-bytes 100] [--pids 123,456] [--room NAME] [--drain-s S]
//
// One publisher sends `rate` messages a second for `seconds` over STOMP/WebSocket (SEND to
// /topic/ladder of a fresh room), each body "{seq} {send time, ms} " padded with 'x' to
// --body-bytes. `receivers` clients read the topic in ONE way:
//   short  GET …/topic/ladder?after={next_after} every --interval-ms (receivers staggered
//          evenly across the interval, as independent clients would be)
//   long   GET …/topic/ladder?after={next_after}&wait={wait-s}, re-issued as soon as it answers
//   sse    one GET with Accept: text/event-stream (a raw stream reader), Last-Event-ID on a
//          reconnect
//   ws     one WebSocket each, STOMP CONNECT + SUBSCRIBE (a minimal raw STOMP client over `ws`)
//   sockjs-*  STOMP through SockJS at the server's /ws-stomp endpoint (an `endpoints` setting,
//          as LOAD_TEST_SETTINGS has), each client a SockJS session of one transport: ws (the
//          websocket transport), stream (xhr_streaming), es (eventsource), poll (xhr polling);
//          the HTTP ones send with xhr_send. The endpoint is one room, so these runs use a
//          topic of their own in it.
// Publisher and receivers live in this one process, so latency (receive time − send time) is
// measured on one clock. The measured window opens when every receiver is ready and closes when
// every receiver has every message (or --drain-s after the last publish); the server's CPU
// (/proc ticks of --pids, 10 ms resolution, as scripts/bench.sh and benches/loadgen read it) is
// taken over that window. Requests count every HTTP request (or WebSocket upgrade) the
// receivers made, from their first connection to the window's end; the publisher's one
// WebSocket is the same in every run and is not counted.
//
// Prints one JSON line on stdout; progress and problems on stderr. Exits 1 when the run could
// not be made at all (server not answering, refusals), 0 otherwise: a run that lost messages
// says so in its JSON ("complete": false, "missing").

import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';

const USAGE =
  'usage: node benches/ladder.mjs --url http://127.0.0.1:8811 --transport short|long|sse|ws|sockjs-ws|sockjs-stream|sockjs-es|sockjs-poll [--receivers 10] ' +
  '[--rate 20] [--seconds 20] [--interval-ms 1000] [--wait-s 25] [--body-bytes 100] [--pids 1,2] [--room NAME] [--drain-s S]';

function parseArgs(argv) {
  const options = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--') || i + 1 >= argv.length) fail(`unexpected argument '${arg}'\n${USAGE}`);
    options[arg.slice(2)] = argv[++i];
  }
  return options;
}

function fail(message) {
  console.error(`ladder: ${message}`);
  process.exit(1);
}

const log = (line) => console.error(`ladder: ${line}`);
const options = parseArgs(process.argv.slice(2));
const number = (name, fallback) => {
  if (options[name] === undefined) return fallback;
  const value = Number(options[name]);
  if (!Number.isFinite(value) || value < 0) fail(`--${name} must be a non-negative number, not '${options[name]}'`);
  return value;
};

const TRANSPORTS = {
  short: (o) => `GET ?after= every ${o.intervalMs} ms`,
  long: (o) => `GET ?after=&wait=${o.waitS}, re-issued on each answer`,
  sse: () => 'one GET, Accept: text/event-stream',
  ws: () => 'one WebSocket, STOMP SUBSCRIBE',
  'sockjs-ws': () => "SockJS's websocket transport, STOMP SUBSCRIBE",
  'sockjs-stream': () => 'SockJS xhr_streaming, STOMP SUBSCRIBE sent with xhr_send',
  'sockjs-es': () => 'SockJS eventsource, STOMP SUBSCRIBE sent with xhr_send',
  'sockjs-poll': () => 'SockJS xhr polling, STOMP SUBSCRIBE sent with xhr_send',
};
const SOCKJS_ENDPOINT = '/ws-stomp';
const transport = options.transport;
if (!TRANSPORTS[transport]) fail(`--transport must be one of ${Object.keys(TRANSPORTS).join(', ')}\n${USAGE}`);
if (!options.url) fail(`--url is required\n${USAGE}`);
const o = {
  url: options.url.replace(/\/+$/, ''),
  receivers: number('receivers', 10),
  rate: number('rate', 20),
  seconds: number('seconds', 20),
  intervalMs: number('interval-ms', 1000),
  waitS: number('wait-s', 25),
  bodyBytes: number('body-bytes', 100),
  pids: (options.pids || '').split(',').map((p) => p.trim()).filter(Boolean),
  room: options.room || `ladder-${transport}-${Date.now().toString(36)}`,
};
const viaSockJs = transport.startsWith('sockjs-');
// An endpoint's connections share the room named after its path; a run keeps to a topic of
// its own there.
if (viaSockJs) o.room = SOCKJS_ENDPOINT.slice(1);
o.drainS = number('drain-s', Math.max(10, (3 * o.intervalMs) / 1000));
if (o.receivers < 1 || o.rate <= 0 || o.seconds <= 0) fail('--receivers, --rate and --seconds must be positive');
if (transport === 'short' && o.intervalMs < 1) fail('--interval-ms must be at least 1');

const DESTINATION = viaSockJs ? `/topic/ladder-${transport}-${Date.now().toString(36)}` : '/topic/ladder';
const httpBase = `${o.url}/rooms/${o.room}${DESTINATION}`;
const wsUrl = `${o.url.replace(/^http/, 'ws')}/rooms/${o.room}`;
const published = Math.round(o.rate * o.seconds);
const expected = published * o.receivers;

/** Milliseconds on this process's clock, with sub-millisecond precision. */
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

// ---------------------------------------------------------------------------------------------
// Server CPU from /proc, as benches/loadgen's measure.rs reads it.

function cpuSample(pids) {
  const byName = {};
  let total = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // Fields after the parenthesised command name: utime and stime are fields 14 and 15.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ticks = Number(fields[11]) + Number(fields[12]);
      const name = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      byName[name] = (byName[name] || 0) + ticks;
      total += ticks;
    } catch {
      // the process has gone
    }
  }
  return { total, byName };
}

// ---------------------------------------------------------------------------------------------
// What arrives: per receiver, the sequence numbers seen; for all, the latencies.

const latencies = [];
let delivered = 0;
let duplicates = 0;
let unparsed = 0;
let requests = 0;
let reconnects = 0;
const errors = new Map(); // what went wrong → how often
let allDelivered;
const allDeliveredPromise = new Promise((resolve) => (allDelivered = resolve));
let stopped = false;
const abort = new AbortController();

function error(what) {
  if (stopped) return;
  if (!errors.has(what)) log(`problem: ${what}`);
  errors.set(what, (errors.get(what) || 0) + 1);
}

class Tally {
  constructor() {
    this.seen = new Set();
  }

  record(body, at) {
    const [seq, sent] = String(body).split(' ', 2).map(Number);
    if (!Number.isInteger(seq) || !Number.isFinite(sent)) {
      unparsed++;
      return;
    }
    if (this.seen.has(seq)) {
      duplicates++;
      return;
    }
    this.seen.add(seq);
    latencies.push(at - sent);
    if (++delivered === expected) allDelivered();
  }
}

function bodyOf(message) {
  if (typeof message.body === 'string') return message.body;
  if (typeof message.body_base64 === 'string') return Buffer.from(message.body_base64, 'base64').toString('utf8');
  return '';
}

async function getJson(url) {
  requests++;
  const response = await fetch(url, { headers: { accept: 'application/json' }, signal: abort.signal });
  const text = await response.text();
  if (response.status !== 200) {
    const detail = `GET ${url.replace(o.url, '').replace(/\?.*/, '')} answered ${response.status}: ${text.trim().slice(0, 200)}`;
    throw new Error(response.status === 404 ? `${detail} (is the server a build with the HTTP rungs? rebuild: bash scripts/build.sh)` : detail);
  }
  return { answer: JSON.parse(text), at: now() };
}

/** A failed request outside shutdown: counted, then a short pause so a refusing server is not hammered. */
async function failed(e) {
  if (stopped || abort.signal.aborted) return;
  error(e.cause ? `${e.message} (${e.cause.code || e.cause.message})` : e.message || String(e));
  await sleep(200);
}

// ---------------------------------------------------------------------------------------------
// Receivers. Each has ready() (resolves once it would see the next message) and run(t0).

class ShortPoller {
  constructor(index) {
    this.index = index;
    this.tally = new Tally();
    this.after = 0;
  }

  async poll() {
    const { answer, at } = await getJson(`${httpBase}?after=${this.after}`);
    for (const message of answer.messages) this.tally.record(bodyOf(message), at);
    this.after = answer.next_after;
  }

  ready() {
    return this.poll();
  }

  async run(t0) {
    // Independent clients poll out of step: spread the first polls evenly over one interval.
    let next = t0 + (this.index * o.intervalMs) / o.receivers;
    while (!stopped) {
      await sleep(next - now());
      if (stopped) break;
      next += o.intervalMs;
      await this.poll().catch(failed);
      if (next < now()) next = now(); // a slow answer: poll again at once, do not burst to catch up
    }
  }
}

class LongPoller {
  constructor() {
    this.tally = new Tally();
    this.after = 0;
  }

  async ready() {
    // A plain poll first: the connection is open and `after` is where the room stands.
    const { answer, at } = await getJson(`${httpBase}?after=0`);
    for (const message of answer.messages) this.tally.record(bodyOf(message), at);
    this.after = answer.next_after;
  }

  async run() {
    while (!stopped) {
      try {
        const { answer, at } = await getJson(`${httpBase}?after=${this.after}&wait=${o.waitS}`);
        for (const message of answer.messages) this.tally.record(bodyOf(message), at);
        this.after = answer.next_after;
      } catch (e) {
        await failed(e);
      }
    }
  }
}

class EventStream {
  constructor() {
    this.tally = new Tally();
    this.lastId = null;
  }

  async connect() {
    requests++;
    const headers = { accept: 'text/event-stream', 'cache-control': 'no-cache', 'accept-encoding': 'identity' };
    if (this.lastId !== null) headers['last-event-id'] = this.lastId;
    const response = await fetch(httpBase, { headers, signal: abort.signal });
    if (response.status !== 200 || !response.body) {
      const text = await response.text().catch(() => '');
      throw new Error(`GET ${httpBase.replace(o.url, '')} (event stream) answered ${response.status}: ${text.trim().slice(0, 200)}`);
    }
    this.reader = response.body.getReader();
  }

  ready() {
    // The room registers the stream before it sends the head, so once the head is here no
    // later message can be missed.
    return this.connect();
  }

  async run() {
    while (!stopped) {
      try {
        await this.pump();
        if (stopped) break;
        error('event stream ended; reconnecting with Last-Event-ID');
      } catch (e) {
        await failed(e);
      }
      if (stopped) break;
      reconnects++;
      try {
        await this.connect();
      } catch (e) {
        await failed(e);
      }
    }
  }

  /** Reads events until the stream ends. */
  async pump() {
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { value, done } = await this.reader.read();
      if (done) return;
      const at = now();
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + (buffer[end] === '\r' ? 4 : 2));
        this.event(block, at);
      }
    }
  }

  event(block, at) {
    let event = 'message';
    const data = [];
    for (const line of block.split(/\r?\n/)) {
      if (line === '' || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'id') this.lastId = value;
      else if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if (event !== 'message' || data.length === 0) return;
    try {
      this.tally.record(bodyOf(JSON.parse(data.join('\n'))), at);
    } catch {
      unparsed++;
    }
  }
}

/** STOMP frames out of text that arrives in pieces: calls `onFrame(command, headers, body)`. */
class StompFrames {
  constructor(onFrame) {
    this.onFrame = onFrame;
    this.buffer = '';
  }

  push(text) {
    this.buffer += text;
    let end;
    while ((end = this.buffer.indexOf('\0')) >= 0) {
      const frame = this.buffer.slice(0, end).replace(/^[\r\n]+/, '');
      this.buffer = this.buffer.slice(end + 1);
      const split = frame.search(/\r?\n\r?\n/);
      const head = split < 0 ? frame : frame.slice(0, split);
      const body = split < 0 ? '' : frame.slice(split + (frame[split] === '\r' ? 4 : 2));
      const [command, ...headers] = head.split(/\r?\n/);
      this.onFrame(command, headers, body);
    }
    // Heart-beats between frames.
    this.buffer = this.buffer.replace(/^[\r\n]+$/, '');
  }
}

/** A minimal STOMP 1.2 client over `ws`: CONNECT, SUBSCRIBE with a receipt, SEND, MESSAGE. */
class Stomp {
  constructor(login) {
    this.login = login;
    this.onMessage = () => {};
    this.waiting = new Map(); // command → { resolve, reject }
  }

  open() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(wsUrl, ['v12.stomp'], { perMessageDeflate: false });
      this.ws = ws;
      ws.on('error', (e) => reject(new Error(`WebSocket ${wsUrl}: ${e.message}`)));
      ws.on('unexpected-response', (_, response) =>
        reject(new Error(`WebSocket ${wsUrl} refused with HTTP ${response.statusCode}`)));
      ws.on('open', () => {
        this.frames(ws);
        this.expect('CONNECTED').then(resolve, reject);
        ws.send(`CONNECT\naccept-version:1.2\nhost:room\nlogin:${this.login}\npasscode:\nheart-beat:0,0\n\n\0`);
      });
    });
  }

  frames(ws) {
    let at = 0;
    const frames = new StompFrames((command, headers, body) => {
      if (command === 'MESSAGE') this.onMessage(body, at);
      else if (command === 'ERROR') {
        const message = headers.find((h) => h.startsWith('message:'));
        error(`STOMP ERROR: ${message ? message.slice(8) : body.slice(0, 200)}`);
        this.waiting.get('RECEIPT')?.reject(new Error(`STOMP ERROR: ${message || body.slice(0, 200)}`));
        this.waiting.get('CONNECTED')?.reject(new Error(`STOMP ERROR: ${message || body.slice(0, 200)}`));
      } else this.waiting.get(command)?.resolve();
    });
    ws.on('message', (data) => {
      at = now();
      frames.push(data.toString());
    });
    ws.on('close', (code, reason) => {
      if (!stopped) error(`WebSocket closed by the server (${code} ${reason})`);
    });
  }

  expect(command) {
    return new Promise((resolve, reject) => this.waiting.set(command, { resolve, reject }));
  }

  subscribe(destination) {
    const receipt = this.expect('RECEIPT');
    this.ws.send(`SUBSCRIBE\nid:0\ndestination:${destination}\nack:auto\nreceipt:subscribed\n\n\0`);
    return receipt;
  }

  send(destination, body) {
    this.ws.send(`SEND\ndestination:${destination}\ncontent-type:text/plain\ncontent-length:${Buffer.byteLength(body)}\n\n${body}\0`);
  }

  close() {
    try {
      this.ws.close();
    } catch {
      // already gone
    }
  }
}

class WebSocketReceiver {
  close() {
    this.stomp.close();
  }

  constructor(index) {
    this.tally = new Tally();
    this.stomp = new Stomp(`ladder-receiver-${index}`);
    this.stomp.onMessage = (body, at) => this.tally.record(body, at);
  }

  async ready() {
    requests++;
    await this.stomp.open();
    await this.stomp.subscribe(DESTINATION);
  }

  run() {}
}

/**
 * What both SockJS receivers share (a minimal raw SockJS client): STOMP inside SockJS frames,
 * and the CONNECT and SUBSCRIBE; a subclass carries them (`send`) and reads (`frame`).
 */
class SockJsSession {
  constructor(index) {
    this.tally = new Tally();
    this.path = `${SOCKJS_ENDPOINT}/000/ladder${index}x${Date.now().toString(36)}`;
    this.waiting = new Map();
    this.stomp = new StompFrames((command, headers, body) => {
      if (command === 'MESSAGE') this.tally.record(body, this.at);
      else if (command === 'ERROR') error(`STOMP ERROR over SockJS: ${headers.find((h) => h.startsWith('message:')) || body}`);
      else this.waiting.get(command)?.();
    });
  }

  expect(command) {
    return new Promise((resolve) => this.waiting.set(command, resolve));
  }

  /** One SockJS frame: `o`, `h`, `a[...]` or `c[...]`. */
  frame(text) {
    if (text.startsWith('a')) for (const message of JSON.parse(text.slice(1))) this.stomp.push(message);
    else if (text.startsWith('c') && !stopped) error(`SockJS session closed: ${text}`);
  }

  async subscribe() {
    const connected = this.expect('CONNECTED');
    await this.send('CONNECT\naccept-version:1.2\nhost:room\nheart-beat:0,0\n\n\0');
    await connected;
    const subscribed = this.expect('RECEIPT');
    await this.send(`SUBSCRIBE\nid:0\ndestination:${DESTINATION}\nack:auto\nreceipt:subscribed\n\n\0`);
    await subscribed;
  }
}

/**
 * A SockJS session over one of SockJS's HTTP transports: a receiving request (xhr_streaming,
 * eventsource, or xhr polls one after another), and xhr_send for what the client sends.
 */
class SockJsReceiver extends SockJsSession {
  constructor(index, kind) {
    super(index);
    this.kind = kind; // 'stream' | 'es' | 'poll'
    this.base = `${o.url}${this.path}`;
  }

  async send(frame) {
    requests++;
    const response = await fetch(`${this.base}/xhr_send`, { method: 'POST', body: JSON.stringify([frame]), signal: abort.signal });
    await response.arrayBuffer();
    if (response.status !== 204) throw new Error(`xhr_send answered ${response.status}`);
  }

  async open() {
    requests++;
    const [method, path] = { stream: ['POST', 'xhr_streaming'], es: ['GET', 'eventsource'], poll: ['POST', 'xhr'] }[this.kind];
    const response = await fetch(`${this.base}/${path}`, { method, signal: abort.signal, headers: { 'accept-encoding': 'identity' } });
    if (response.status !== 200) throw new Error(`${path} answered ${response.status}`);
    return response;
  }

  async ready() {
    if (this.kind === 'poll') {
      await this.pollOnce(); // `o`
      this.pump = this.pollLoop();
    } else {
      this.pump = this.streamLoop(await this.open());
    }
    await this.subscribe();
  }

  run() {
    return this.pump;
  }

  async pollOnce() {
    const response = await this.open();
    const text = await response.text();
    this.at = now();
    for (const line of text.split('\n')) if (line) this.frame(line);
  }

  async pollLoop() {
    while (!stopped) await this.pollOnce().catch(failed);
  }

  /** Reads a streaming answer; a new one when it ends (SockJS ends them every 128 KiB). */
  async streamLoop(response) {
    while (!stopped) {
      try {
        await this.read(response.body.getReader());
        if (stopped) break;
        reconnects++;
        response = await this.open();
      } catch (e) {
        await failed(e);
        if (stopped) break;
        response = await this.open().catch(() => null);
        if (!response) await sleep(200);
      }
    }
  }

  async read(reader) {
    const decoder = new TextDecoder();
    let buffer = '';
    const separator = this.kind === 'es' ? '\r\n\r\n' : '\n';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      this.at = now();
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf(separator)) >= 0) {
        let text = buffer.slice(0, end);
        buffer = buffer.slice(end + separator.length);
        if (this.kind === 'es') {
          if (!text.startsWith('data: ')) continue;
          text = decodeURI(text.slice(6));
        }
        if (/^h+$/.test(text)) continue; // the prelude, or a heart-beat
        this.frame(text);
      }
    }
  }
}

/** A SockJS session over SockJS's websocket transport: frames sent as JSON arrays. */
class SockJsWebSocketReceiver extends SockJsSession {
  async send(frame) {
    this.ws.send(JSON.stringify([frame]));
  }

  close() {
    this.ws?.close();
  }

  async ready() {
    requests++;
    const url = `${o.url.replace(/^http/, 'ws')}${this.path}/websocket`;
    const ws = new WebSocket(url, { perMessageDeflate: false });
    this.ws = ws;
    ws.on('message', (data) => {
      this.at = now();
      this.frame(data.toString());
    });
    await new Promise((resolve, reject) => {
      ws.on('open', resolve);
      ws.on('error', (e) => reject(new Error(`WebSocket ${url}: ${e.message}`)));
    });
    await this.subscribe();
  }

  run() {}
}

// ---------------------------------------------------------------------------------------------

function quantiles(values) {
  if (values.length === 0) return null;
  const sorted = Float64Array.from(values).sort();
  const at = (q) => Math.round(sorted[Math.round((sorted.length - 1) * q)] * 1000) / 1000;
  const mean = sorted.reduce((a, b) => a + b, 0) / sorted.length;
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: at(1), mean: Math.round(mean * 1000) / 1000 };
}

function body(seq, sentMs) {
  const text = `${seq} ${sentMs.toFixed(3)} `;
  return text.length >= o.bodyBytes ? text : text + 'x'.repeat(o.bodyBytes - text.length);
}

async function main() {
  log(`${transport}: ${o.receivers} receivers, ${o.rate} msg/s for ${o.seconds} s into ${httpBase}`);
  const publisher = new Stomp('ladder-publisher');
  try {
    await publisher.open();
  } catch (e) {
    fail(`the publisher could not connect: ${e.message}. Is stomp-rooms running at ${o.url} (wrangler dev)?`);
  }

  const make = {
    short: (i) => new ShortPoller(i),
    long: () => new LongPoller(),
    sse: () => new EventStream(),
    ws: (i) => new WebSocketReceiver(i),
    'sockjs-ws': (i) => new SockJsWebSocketReceiver(i),
    'sockjs-stream': (i) => new SockJsReceiver(i, 'stream'),
    'sockjs-es': (i) => new SockJsReceiver(i, 'es'),
    'sockjs-poll': (i) => new SockJsReceiver(i, 'poll'),
  };
  const receivers = Array.from({ length: o.receivers }, (_, i) => make[transport](i));
  try {
    await Promise.all(receivers.map((r) => r.ready()));
  } catch (e) {
    fail(`a receiver could not start: ${e.message}`);
  }
  const t0 = now() + 200;
  const running = receivers.map((r) => r.run(t0));
  // Let the first long polls reach the room before the clock starts (they could not miss a
  // message anyway: each reads the history after its `after` first).
  await sleep(500);

  const cpuBefore = cpuSample(o.pids);
  const clientBefore = process.cpuUsage();
  const start = now();
  for (let seq = 0; seq < published; seq++) {
    await sleep(start + (seq * 1000) / o.rate - now());
    publisher.send(DESTINATION, body(seq, now()));
  }
  const lastPublish = now();
  log(`${transport}: published ${published}; waiting for the deliveries (at most ${o.drainS} s)`);
  const drained = await Promise.race([allDeliveredPromise.then(() => true), sleep(o.drainS * 1000).then(() => false)]);
  const windowEnd = now();
  const cpuAfter = cpuSample(o.pids);
  const client = process.cpuUsage(clientBefore);
  const requestsMade = requests;

  stopped = true;
  abort.abort();
  publisher.close();
  for (const r of receivers) r.close?.();
  await Promise.race([Promise.allSettled(running), sleep(1000)]);

  const serverTicks = cpuAfter.total - cpuBefore.total;
  const byProcess = Object.fromEntries(
    Object.entries(cpuAfter.byName).map(([name, ticks]) => [name, (ticks - (cpuBefore.byName[name] || 0)) / 100]),
  );
  const serverCpu = o.pids.length ? serverTicks / 100 : null;
  const result = {
    scenario: 'ladder',
    transport,
    how: TRANSPORTS[transport](o),
    room: o.room,
    receivers: o.receivers,
    rate: o.rate,
    seconds: o.seconds,
    interval_ms: transport === 'short' ? o.intervalMs : null,
    wait_s: transport === 'long' ? o.waitS : null,
    body_bytes: o.bodyBytes,
    published,
    expected,
    delivered,
    missing: expected - delivered,
    duplicates,
    unparsed,
    complete: delivered === expected,
    latency_ms: quantiles(latencies),
    requests: requestsMade,
    requests_per_delivery: delivered ? requestsMade / delivered : null,
    reconnects,
    errors: Object.fromEntries(errors),
    publish_seconds: (lastPublish - start) / 1000,
    window_seconds: (windowEnd - start) / 1000,
    drained_before_deadline: drained,
    server_pids: o.pids.map(Number),
    server_cpu_seconds: serverCpu,
    server_cpu_by_process: o.pids.length ? byProcess : null,
    cpu_us_per_delivery: serverCpu !== null && delivered ? (1e6 * serverCpu) / delivered : null,
    client_cpu_seconds: (client.user + client.system) / 1e6,
  };
  if (!result.complete) log(`${transport}: INCOMPLETE: ${delivered} of ${expected} deliveries arrived (see "errors" in the JSON)`);
  if (!o.pids.length) log('no --pids given: server CPU not measured');
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
}

main().catch((e) => fail(e.stack || String(e)));
