#!/usr/bin/env node
// What a deploy leaves open, said before `wrangler deploy` (scripts/deploy.sh runs this first).
// Rooms are open to anyone until the Worker has a key or a login list, and any site's pages may
// open sockets until allowed_origins lists yours (README, "Deploy checklist"). This reads
// wrangler.toml and, when wrangler is logged in, the Worker's secret names (never values); it
// warns and never stops the deploy: open rooms are a choice.
//
//   node scripts/deploy-check.mjs [--offline]   (--offline: do not ask Cloudflare for secrets)

import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { unstable_readConfig as readConfig } from 'wrangler';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const KEYS = ['STOMP_JWT_SECRET', 'STOMP_JWT_KEYS', 'STOMP_USERS'];

const config = readConfig({ config: join(ROOT, 'wrangler.toml') });
const raw = config.vars?.ROOM_SETTINGS;
const settings = (typeof raw === 'string' ? JSON.parse(raw) : raw) ?? {};
const say = (text) => console.log(`deploy: ${text}`);

/** The names of the deployed Worker's secrets, or why they could not be read. */
async function secretNames() {
  if (process.argv.includes('--offline')) return { reason: 'not checked in a dry run' };
  try {
    const { stdout } = await promisify(execFile)('wrangler', ['secret', 'list', '--format', 'json'], {
      cwd: ROOT, timeout: 20_000,
    });
    return { names: JSON.parse(stdout).map((secret) => secret.name) };
  } catch (error) {
    const first = `${error.stderr ?? error.message}`.split('\n').find((line) => line.trim()) ?? '';
    return { reason: `wrangler secret list failed: ${first.trim()}` };
  }
}

const secrets = await secretNames();
const keys = secrets.names?.filter((name) => KEYS.includes(name)) ?? [];
if (secrets.names && keys.length === 0) {
  say(`WARNING: rooms will be open to anyone: the Worker has none of ${KEYS.join(', ')}. To require a token `
    + 'or a login: npx wrangler secret put STOMP_JWT_SECRET (README, "Deploy checklist").');
} else if (!secrets.names) {
  say(`rooms are open to anyone unless the Worker has one of ${KEYS.join(', ')} as a secret `
    + `(${secrets.reason}; list them with: npx wrangler secret list)`);
} else {
  say(`rooms need a token or a login (${keys.join(', ')} set)`);
}
if ((settings.allowed_origins ?? []).length === 0) {
  say('WARNING: allowed_origins is empty in ROOM_SETTINGS: pages on any site may open sockets to your rooms '
    + 'from their visitors\' browsers. List your pages\' origins in wrangler.toml.');
} else {
  say(`pages may open sockets from: ${settings.allowed_origins.join(', ')} (and the Worker's own pages)`);
}
say('after deploying, GET https://<your worker>/healthz says what the deployed Worker has');
