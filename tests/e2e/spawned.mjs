// A command-line program of the project's (scripts/*.mjs, scripts/*.sh) run as a person runs
// it, for end-to-end tests: its output collected as it comes, awaited by pattern.

import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DEFAULT_TIMEOUT_MS = 15_000;

export class Spawned {
  /** Starts `command` with `args` in the checkout; `env` adds to (or, as undefined, removes
   * from) this process's environment. `detached` puts it in its own process group, so stop()
   * ends what it started too (wrangler's workerd). */
  constructor(command, args, { env = {}, detached = false } = {}) {
    const environment = { ...process.env, ...env };
    for (const [name, value] of Object.entries(environment)) if (value === undefined) delete environment[name];
    this.stdout = '';
    this.stderr = '';
    this.changed = new Set();
    this.detached = detached;
    this.child = spawn(command, args, { cwd: ROOT, env: environment, detached, stdio: ['pipe', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => {
      this.code = code;
      resolve(code ?? signal);
      this.notify();
    }));
    this.child.stdout.on('data', (chunk) => { this.stdout += chunk; this.notify(); });
    this.child.stderr.on('data', (chunk) => { this.stderr += chunk; this.notify(); });
  }

  notify() {
    for (const listener of [...this.changed]) listener();
  }

  /** Resolves with the match once `pattern` shows up in the stream (`stdout` or `stderr`). */
  waitFor(pattern, stream = 'stdout', timeoutMs = DEFAULT_TIMEOUT_MS) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const match = pattern.exec(this[stream]);
        if (match) {
          done();
          resolve(match);
        } else if (this.code !== undefined) {
          done();
          reject(new Error(`exited with ${this.code} before ${pattern} showed on ${stream}:\n${this.describe()}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${pattern} on ${stream}:\n${this.describe()}`));
      }, timeoutMs);
      const done = () => { clearTimeout(timer); this.changed.delete(check); };
      this.changed.add(check);
      check();
    });
  }

  /** Resolves with the exit code once the program ends by itself. */
  async exit(timeoutMs = DEFAULT_TIMEOUT_MS) {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`still running after ${timeoutMs} ms:\n${this.describe()}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Ends it (and its process group, when detached) if it is still running. */
  async stop() {
    if (this.code !== undefined) return;
    try {
      if (this.detached) process.kill(-this.child.pid, 'SIGTERM');
      else this.child.kill('SIGTERM');
    } catch {
      // already gone
    }
    await this.exited;
  }

  describe() {
    return `--- stdout\n${this.stdout}\n--- stderr\n${this.stderr}`;
  }
}

/** Runs a program to its end: { code, stdout, stderr }. */
export async function run(command, args, options) {
  const program = new Spawned(command, args, options);
  program.child.stdin.end();
  const code = await program.exit(options?.timeoutMs ?? 120_000);
  return { code, stdout: program.stdout, stderr: program.stderr };
}
