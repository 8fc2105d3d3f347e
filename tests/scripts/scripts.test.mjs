// The project's own commands, run as a new user runs them: npm start's port flag, what setup
// installs for running and deploying (no browser) and for testing, and where it cannot install,
// what it says; what a deploy warns about; which local files git keeps out.

import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { test } from 'node:test';
import { freePort } from '../e2e/harness.mjs';
import { ROOT, run, Spawned } from '../e2e/spawned.mjs';

const scratch = mkdtempSync(join(tmpdir(), 'stomp-rooms-scripts-'));

/** Starts `npm start`'s server script as a user would, waits for the page, and stops it. */
async function startDev(args, env = {}) {
  const port = env.PORT ?? args[args.indexOf('--port') + 1];
  const dev = new Spawned('bash', ['scripts/dev.sh', ...args, '--inspector-port', String(await freePort()),
    '--persist-to', mkdtempSync(join(scratch, 'state-')), '--show-interactive-dev-session=false'], {
    env: { STOMP_ROOMS_SKIP_BUILD: '1', ...env }, detached: true,
  });
  try {
    await dev.waitFor(new RegExp(`Ready on http://127\\.0\\.0\\.1:${port}`), 'stdout', 90_000);
    const page = await fetch(`http://127.0.0.1:${port}/`);
    await page.arrayBuffer();
    return { dev, status: page.status };
  } finally {
    await dev.stop();
  }
}

test('npm start -- --port <n> serves on that port, the banner says so, and an offline start prints no stack traces', async () => {
  const port = String(await freePort());
  const { dev, status } = await startDev(['--port', port]);
  assert.equal(status, 200);
  assert.match(dev.stdout, new RegExp(`^dev: building and starting wrangler dev on http://127\\.0\\.0\\.1:${port} `, 'm'));
  assert.doesNotMatch(dev.stdout + dev.stderr, /expects a single value/);
  assert.doesNotMatch(dev.stdout + dev.stderr, /ENOTFOUND|getaddrinfo/, 'no failed look-ups of Cloudflare when offline');
});

test('PORT=<n> npm start serves on that port, and the banner says so', async () => {
  const port = String(await freePort());
  const { dev, status } = await startDev([], { PORT: port });
  assert.equal(status, 200);
  assert.match(dev.stdout, new RegExp(`wrangler dev on http://127\\.0\\.0\\.1:${port} `));
});

/** A directory of stand-ins for Debian's apt and dpkg that log what they are asked to do (and
 * install nothing; none with `apt: false`), and for rustc when `wasmStd` says whether it has
 * the wasm32 std. */
function fakeTools(name, { wasmStd, apt = true } = {}) {
  const bin = join(scratch, name);
  mkdirSync(bin);
  const log = join(bin, 'calls.log');
  const script = (file, body) => {
    writeFileSync(join(bin, file), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, file), 0o755);
  };
  if (apt) {
    script('apt-get', `echo "apt-get $*" >> ${log}`);
    script('dpkg-query', 'exit 1'); // nothing installed
    script('sudo', '"$@"');
  }
  if (wasmStd !== undefined) {
    const libdir = join(bin, 'wasm32-lib');
    mkdirSync(libdir);
    if (wasmStd) writeFileSync(join(libdir, 'libstd-fake.rlib'), '');
    script('rustc', `echo ${libdir}`);
  }
  return { bin, calls: () => { try { return readFileSync(log, 'utf8'); } catch { return ''; } } };
}

/** A PATH like this one but without apt, dpkg or sudo, as on macOS or Fedora. */
let withoutApt;
function pathWithoutApt(extraBin) {
  const bin = join(scratch, 'no-apt');
  if (withoutApt) return [extraBin, bin].filter(Boolean).join(delimiter);
  withoutApt = bin;
  mkdirSync(bin);
  const seen = new Set(['apt-get', 'apt', 'dpkg-query', 'dpkg', 'sudo']);
  for (const dir of process.env.PATH.split(delimiter)) {
    let names = [];
    try { names = readdirSync(dir); } catch { continue; }
    for (const file of names) {
      if (seen.has(file)) continue;
      seen.add(file);
      symlinkSync(join(dir, file), join(bin, file));
    }
  }
  return [extraBin, bin].filter(Boolean).join(delimiter);
}

const setup = (purpose, env) => run('bash', ['scripts/setup.sh', purpose], { env });

test('setup for running and deploying installs no browser; setup for the tests does, unless CHROMIUM_PATH names one', async () => {
  const forRun = fakeTools('debian-run', { wasmStd: false });
  const ran = await setup('run', { PATH: `${forRun.bin}${delimiter}${process.env.PATH}`, CHROMIUM_PATH: undefined });
  assert.equal(ran.code, 0, ran.stderr);
  assert.match(forRun.calls(), /apt-get .*install .*rustc-web cargo-web rust-web-src lld-22/, 'the wasm toolchain comes from Debian');
  assert.doesNotMatch(forRun.calls(), /chromium/, 'no browser for npm start or npm run deploy');
  assert.doesNotMatch(ran.stdout, /Chromium/);

  const forTest = fakeTools('debian-test', { wasmStd: true });
  const tested = await setup('test', { PATH: `${forTest.bin}${delimiter}${process.env.PATH}`, CHROMIUM_PATH: undefined });
  assert.equal(tested.code, 0, tested.stderr);
  assert.match(forTest.calls(), /apt-get .*install .*chromium/, 'the page tests need a browser');
  assert.doesNotMatch(forTest.calls(), /rustc-web/, 'a toolchain with the wasm32 std is used as it is');

  const ownBrowser = fakeTools('debian-own-browser', { wasmStd: true });
  const chromium = join(ownBrowser.bin, 'my-chrome');
  writeFileSync(chromium, '#!/bin/sh\n');
  chmodSync(chromium, 0o755);
  const withPath = await setup('test', { PATH: `${ownBrowser.bin}${delimiter}${process.env.PATH}`, CHROMIUM_PATH: chromium });
  assert.equal(withPath.code, 0, withPath.stderr);
  assert.equal(ownBrowser.calls(), '', 'CHROMIUM_PATH skips installing one');
  assert.match(withPath.stdout, /using CHROMIUM_PATH=/);
});

test('off Debian, setup says exactly what to install instead of failing at apt-get, and running needs no browser', async () => {
  const noWasm = fakeTools('elsewhere-no-wasm', { wasmStd: false, apt: false });
  const refused = await setup('run', { PATH: pathWithoutApt(noWasm.bin) });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /Install Rust from https:\/\/rustup\.rs, then run: rustup target add wasm32-unknown-unknown/);
  assert.doesNotMatch(refused.stderr, /apt-get: command not found|FAILED/);

  const withWasm = fakeTools('elsewhere-wasm', { wasmStd: true, apt: false });
  const ran = await setup('run', { PATH: pathWithoutApt(withWasm.bin), CHROMIUM_PATH: undefined });
  assert.equal(ran.code, 0, ran.stderr);
  assert.match(ran.stdout, /the active Rust toolchain has the wasm32 std; using it/);

  const badBrowser = await setup('test', { PATH: pathWithoutApt(withWasm.bin), CHROMIUM_PATH: join(scratch, 'no-such-chrome') });
  assert.equal(badBrowser.code, 1);
  assert.match(badBrowser.stderr, /CHROMIUM_PATH is .*no-such-chrome, which is not an executable file/);
});

test('a dry-run deploy says rooms are open until keys and allowed_origins are set, then bundles the Worker', async () => {
  const deployed = await run('bash', ['scripts/deploy.sh', '--dry-run', '--outdir', mkdtempSync(join(scratch, 'bundle-'))], {
    env: { STOMP_ROOMS_SKIP_BUILD: '1' },
  });
  assert.equal(deployed.code, 0, deployed.stderr);
  assert.match(deployed.stdout, /deploy: rooms are open to anyone unless the Worker has one of STOMP_JWT_SECRET, STOMP_JWT_KEYS, STOMP_USERS as a secret/);
  assert.match(deployed.stdout, /deploy: WARNING: allowed_origins is empty/);
  assert.match(deployed.stdout, /--dry-run: exiting now\./);
});

test('git keeps .dev.vars (local secrets) out and .dev.vars.example in', async () => {
  const ignored = await run('git', ['check-ignore', '.dev.vars', '.dev.vars.production']);
  assert.deepEqual(ignored.stdout.trim().split('\n'), ['.dev.vars', '.dev.vars.production']);
  const example = await run('git', ['check-ignore', '.dev.vars.example']);
  assert.equal(example.code, 1, 'the example is not ignored');
  assert.match(readFileSync(join(ROOT, '.dev.vars.example'), 'utf8'), /^# STOMP_JWT_SECRET=/m);
});
