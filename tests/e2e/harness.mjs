// Starts the real Worker under `wrangler dev` for end-to-end tests, and always stops it.
//
// useServer() registers before/after hooks: one server per test file, shared by its tests. The
// server runs the build already in build/ (scripts/test.sh builds it once), on a free port, with
// its own persistence directory. When a test fails, wrangler's log is printed with the failure.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, afterEach, before } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const READY_TIMEOUT_MS = 90_000;

export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A running `wrangler dev`: start(), stop(), restart() keeping the same port and storage. */
export class DevServer {
  /** `vars`: extra `--var` bindings, e.g. { ROOM_SETTINGS: JSON.stringify({...}) }. `config`: a
   * wrangler configuration file other than wrangler.toml (in the checkout, where its paths lead). */
  constructor({ persistDir, vars = {}, config } = {}) {
    this.vars = vars;
    this.config = config;
    this.persistDir = persistDir ?? mkdtempSync(join(tmpdir(), 'stomp-rooms-state-'));
    this.ownsPersistDir = !persistDir;
    this.log = '';
    this.child = null;
    this.port = null;
  }

  get httpUrl() {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsUrl() {
    return `ws://127.0.0.1:${this.port}`;
  }

  async start() {
    this.port ??= await freePort();
    const args = ['dev', '--ip', '127.0.0.1', '--port', String(this.port), '--persist-to', this.persistDir,
      '--inspector-port', String(await freePort()), '--show-interactive-dev-session=false',
      ...Object.entries(this.vars).flatMap(([name, value]) => ['--var', `${name}:${value}`]),
      ...(this.config ? ['--config', this.config] : [])];
    this.log += `\n--- wrangler ${args.join(' ')}\n`;
    this.child = spawn(join(ROOT, 'node_modules', '.bin', 'wrangler'), args, {
      cwd: ROOT,
      detached: true, // its own process group, so stop() also ends workerd
      env: {
        ...process.env,
        // wrangler needs Node 22, which the npm package `node` puts in node_modules/.bin.
        PATH: `${join(ROOT, 'node_modules', '.bin')}:${process.env.PATH}`,
        STOMP_ROOMS_SKIP_BUILD: '1',
        WRANGLER_SEND_METRICS: 'false',
        CLOUDFLARE_CF_FETCH_ENABLED: 'false', // see scripts/env.sh
        X_LOCAL_OBSERVABILITY: 'false', // see scripts/env.sh
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
    this.exited = exited;
    for (const stream of [this.child.stdout, this.child.stderr]) {
      stream.on('data', (chunk) => { this.log += chunk.toString(); });
    }
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      const code = await Promise.race([exited, sleep(250).then(() => undefined)]);
      if (code !== undefined) {
        throw new Error(`wrangler dev exited with ${code} before it was ready:\n${this.log}`);
      }
      try {
        const response = await fetch(`${this.httpUrl}/`, { signal: AbortSignal.timeout(2000) });
        await response.arrayBuffer();
        if (response.ok) return this;
      } catch {
        // not listening yet
      }
    }
    await this.stop();
    throw new Error(`wrangler dev was not ready after ${READY_TIMEOUT_MS} ms:\n${this.log}`);
  }

  async stop() {
    if (!this.child || this.child.exitCode !== null) return;
    const group = -this.child.pid;
    try { process.kill(group, 'SIGTERM'); } catch { /* already gone */ }
    const code = await Promise.race([this.exited, sleep(5000).then(() => 'timeout')]);
    if (code === 'timeout') {
      try { process.kill(group, 'SIGKILL'); } catch { /* already gone */ }
      await this.exited;
    }
    this.child = null;
  }

  async restart() {
    await this.stop();
    await this.start();
  }

  /** Kills wrangler and workerd at once (SIGKILL), as a crash or an out-of-memory kill would:
   * nothing is flushed, no socket is closed cleanly. start() brings it back on the same storage. */
  async kill() {
    if (!this.child || this.child.exitCode !== null) return;
    try { process.kill(-this.child.pid, 'SIGKILL'); } catch { /* already gone */ }
    await this.exited;
    this.child = null;
  }

  cleanup() {
    if (this.ownsPersistDir) rmSync(this.persistDir, { recursive: true, force: true });
  }
}

/** One DevServer for the calling test file; the returned object is filled in before tests run. */
export function useServer(options) {
  const server = new DevServer(options);
  const kill = () => { if (server.child) try { process.kill(-server.child.pid, 'SIGKILL'); } catch { /* gone */ } };
  process.once('exit', kill);
  before(() => server.start(), { timeout: READY_TIMEOUT_MS + 10_000 });
  afterEach((t) => {
    if (!t.passed) console.error(`--- wrangler dev log for failed test "${t.name}":\n${server.log}`);
  });
  after(async () => {
    await server.stop();
    server.cleanup();
  });
  return server;
}
