// Records a V8 CPU profile of a running `wrangler dev` over its inspector port, while a command
// (the load generator) runs, then writes the profile and a summary of where the time went.
//
//   node scripts/profile.mjs --inspector 9421 --out .profile/fanout -- <command> [args...]
//
// Writes <out>.cpuprofile (open it in Chrome DevTools: Performance, or chrome://inspect) and
// <out>.md: time by category (our wasm, JS glue, runtime APIs, native) and the top functions.

import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import WebSocket from 'ws';

const args = process.argv.slice(2);
const split = args.indexOf('--');
const options = Object.fromEntries(
  args.slice(0, split).reduce((pairs, arg, i, all) => (arg.startsWith('--') ? [...pairs, [arg.slice(2), all[i + 1]]] : pairs), []),
);
const command = args.slice(split + 1);
if (split < 0 || !options.inspector || !options.out || command.length === 0) {
  console.error('usage: node scripts/profile.mjs --inspector PORT --out PATH [--interval-us 100] -- COMMAND [ARGS...]');
  process.exit(2);
}
const log = (line) => console.error(`profile: ${line}`);

/** The inspector target of the Worker (wrangler's proxy lists the isolate at /json). */
async function target(port) {
  for (let attempt = 0; attempt < 60; attempt++) {
    try {
      const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
      const found = targets.find((t) => t.webSocketDebuggerUrl);
      if (found) return found.webSocketDebuggerUrl;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`no inspector target on port ${port}; is wrangler dev running with --inspector-port ${port}?`);
}

class Inspector {
  constructor(url) {
    this.ws = new WebSocket(url, { maxPayload: 1 << 30 });
    this.next = 1;
    this.pending = new Map();
    this.ws.on('message', (data) => {
      const message = JSON.parse(data.toString());
      const waiter = this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id);
      if (message.error) waiter.reject(new Error(`${message.error.message} (${JSON.stringify(message.error)})`));
      else waiter.resolve(message.result);
    });
    this.opened = new Promise((resolve, reject) => { this.ws.once('open', resolve); this.ws.once('error', reject); });
  }

  call(method, params = {}) {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }
}

/** Which part of the system a profile node's time belongs to. */
function category(frame) {
  const { url, functionName } = frame;
  if (url.startsWith('wasm://') || /^\$?(wasm-function|func)\[?\d/.test(functionName)) return 'our wasm';
  if (url !== '') return 'JS glue';
  if (['(program)', '(garbage collector)', '(root)'].includes(functionName)) return 'native (runtime, GC)';
  if (functionName === '(idle)') return 'idle';
  return 'runtime APIs';
}

function summarize(profile, intervalUs) {
  // Self time from the samples: each sample's time delta goes to the node it landed in.
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map();
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i + 1] ?? intervalUs;
    selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
  });
  const functions = new Map();
  const categories = new Map();
  let total = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id).callFrame;
    const kind = category(frame);
    if (kind === 'idle') continue;
    total += us;
    categories.set(kind, (categories.get(kind) ?? 0) + us);
    const where = frame.url ? `${frame.url.split('/').pop()}:${frame.lineNumber + 1}` : '';
    const key = `${frame.functionName || '(anonymous)'}\t${where}\t${kind}`;
    functions.set(key, (functions.get(key) ?? 0) + us);
  }
  const pct = (us) => `${((100 * us) / total).toFixed(1)}%`;
  const ms = (us) => (us / 1000).toFixed(1);
  const lines = [
    `Busy time sampled: ${ms(total)} ms (idle excluded), ${profile.samples.length} samples.`,
    '',
    '| category | ms | share |',
    '| --- | ---: | ---: |',
    ...[...categories].sort((a, b) => b[1] - a[1]).map(([kind, us]) => `| ${kind} | ${ms(us)} | ${pct(us)} |`),
    '',
    '| function | where | category | self ms | share |',
    '| --- | --- | --- | ---: | ---: |',
    ...[...functions].sort((a, b) => b[1] - a[1]).slice(0, 30).map(([key, us]) => {
      const [name, where, kind] = key.split('\t');
      return `| \`${name.replaceAll('|', '\\|')}\` | ${where} | ${kind} | ${ms(us)} | ${pct(us)} |`;
    }),
  ];
  return lines.join('\n');
}

const intervalUs = Number(options['interval-us'] ?? 100);
const url = await target(options.inspector);
log(`attached to ${url}`);
const inspector = new Inspector(url);
await inspector.opened;
await inspector.call('Profiler.enable');
await inspector.call('Profiler.setSamplingInterval', { interval: intervalUs });
await inspector.call('Profiler.start');
log(`sampling every ${intervalUs} µs; running: ${command.join(' ')}`);
const code = await new Promise((resolve) => {
  const child = spawn(command[0], command.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout.on('data', (chunk) => { output += chunk; });
  child.on('exit', (status) => {
    writeFileSync(`${options.out}.loadgen.json`, output);
    resolve(status);
  });
});
const { profile } = await inspector.call('Profiler.stop');
inspector.ws.close();
writeFileSync(`${options.out}.cpuprofile`, JSON.stringify(profile));
const summary = summarize(profile, intervalUs);
writeFileSync(`${options.out}.md`, `${summary}\n`);
console.log(summary);
log(`wrote ${options.out}.cpuprofile (open in Chrome DevTools), ${options.out}.md and ${options.out}.loadgen.json`);
if (code !== 0) {
  log(`the command exited with ${code}`);
  process.exit(1);
}
