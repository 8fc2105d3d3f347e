#!/usr/bin/env node
// Mints a room token (a JWT, README "Minting a token") for a login, from the key the Worker
// verifies with: the HS256 secret STOMP_JWT_SECRET (from the environment, else from .dev.vars),
// or, with --key, an ES256 private key whose public half is in STOMP_JWT_KEYS. The issuer,
// audience and login claim come from ROOM_SETTINGS.auth in wrangler.toml, so the token passes
// the checks the rooms make. The token alone goes to stdout, for TOKEN=$(...); what it allows
// goes to stderr.
//
//   npm run --silent token -- alice --rooms lobby --ttl 1h
//
// Run with no arguments (or --help) for every option.

import { createHmac, createPrivateKey, sign } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

const USAGE = `Usage: npm run --silent token -- <login> [options]

Prints a signed token for <login> that the rooms accept, e.g.
  TOKEN=$(npm run --silent token -- alice --rooms lobby)

Options:
  --rooms <list>      rooms it may join, comma-separated patterns (lobby,team-*); default any
  --subscribe <list>  destinations it may subscribe to (/topic/**,/presence); default any
  --publish <list>    destinations it may send to (/topic/chat); default any
  --read-only         may send nowhere (the same as --publish '')
  --ttl <time>        how long it is valid: 900, 90s, 15m, 2h or 1d; default 1h
  --key <file>        sign ES256 with this private key (PEM, or a JWK in JSON) instead of
                      the HS256 secret; its public half must be in STOMP_JWT_KEYS
  --kid <id>          the key id to name in the token's header (with --key)
  --issuer <iss>      default: auth.issuer in wrangler.toml's ROOM_SETTINGS
  --audience <aud>    default: auth.audience in wrangler.toml's ROOM_SETTINGS

The HS256 secret is STOMP_JWT_SECRET from the environment, or from .dev.vars in the checkout
(copy .dev.vars.example to start one). Use the value you gave 'wrangler secret put'.`;

const base64url = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** Signs `claims` as a compact JWT: HS256 with `secret`, or ES256 with `privateKey` (a
 * KeyObject), naming `kid` when given. */
export function signToken(claims, { secret, privateKey, kid } = {}) {
  const header = { alg: privateKey ? 'ES256' : 'HS256', typ: 'JWT', ...(kid ? { kid } : {}) };
  const input = `${base64url(header)}.${base64url(claims)}`;
  const signature = privateKey
    ? sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' })
    : createHmac('sha256', secret).update(input).digest();
  return `${input}.${signature.toString('base64url')}`;
}

/** Seconds in `900`, `90s`, `15m`, `2h` or `1d`. */
export function parseTtl(text) {
  const match = /^(\d+)\s*([smhd]?)$/.exec(String(text).trim());
  if (!match || Number(match[1]) === 0) {
    throw new Error(`--ttl ${text}: give a positive number of seconds, or 90s, 15m, 2h, 1d`);
  }
  return Number(match[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[match[2]];
}

/** KEY=value lines of a .dev.vars file (quotes around a value are dropped). */
export function readDevVars(path) {
  const vars = {};
  for (const line of readFileSync(path, 'utf8').split(/\r?\n/)) {
    const match = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!match || line.trimStart().startsWith('#')) continue;
    const value = match[2];
    vars[match[1]] = /^(["']).*\1$/.test(value) ? value.slice(1, -1) : value;
  }
  return vars;
}

/** ROOM_SETTINGS.auth from wrangler.toml (a table, or a JSON string), or {}. */
async function configuredAuth() {
  const { unstable_readConfig: readConfig } = await import('wrangler');
  const settings = readConfig({ config: join(ROOT, 'wrangler.toml') }).vars?.ROOM_SETTINGS;
  const parsed = typeof settings === 'string' ? JSON.parse(settings) : settings;
  return parsed?.auth ?? {};
}

const list = (text) => text.split(',').map((item) => item.trim()).filter(Boolean);

async function main(argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      rooms: { type: 'string' },
      subscribe: { type: 'string' },
      publish: { type: 'string' },
      'read-only': { type: 'boolean' },
      ttl: { type: 'string', default: '1h' },
      key: { type: 'string' },
      kid: { type: 'string' },
      issuer: { type: 'string' },
      audience: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || positionals.length !== 1) {
    console.error(USAGE);
    return values.help ? 0 : 2;
  }
  const [login] = positionals;
  const auth = await configuredAuth();
  const signing = {};
  if (values.key) {
    const text = readFileSync(values.key, 'utf8');
    signing.privateKey = text.trimStart().startsWith('{')
      ? createPrivateKey({ key: JSON.parse(text), format: 'jwk' })
      : createPrivateKey(text);
    signing.kid = values.kid;
  } else {
    const devVars = join(ROOT, '.dev.vars');
    signing.secret = process.env.STOMP_JWT_SECRET
      ?? (existsSync(devVars) ? readDevVars(devVars).STOMP_JWT_SECRET : undefined);
    if (!signing.secret) {
      console.error('token: no key to sign with. Set STOMP_JWT_SECRET to the secret the Worker has '
        + '(wrangler secret put STOMP_JWT_SECRET), put it in .dev.vars (see .dev.vars.example), '
        + 'or pass --key <private key> for ES256.');
      return 1;
    }
  }
  const now = Math.floor(Date.now() / 1000);
  const ttl = parseTtl(values.ttl);
  const issuer = values.issuer ?? auth.issuer;
  const audience = values.audience ?? auth.audience;
  const claims = {
    [auth.login_claim ?? 'sub']: login,
    ...(issuer ? { iss: issuer } : {}),
    ...(audience ? { aud: audience } : {}),
    iat: now,
    exp: now + ttl,
    ...(values.rooms !== undefined ? { rooms: list(values.rooms) } : {}),
    ...(values.subscribe !== undefined ? { subscribe: list(values.subscribe) } : {}),
    ...(values['read-only'] ? { publish: [] } : values.publish !== undefined ? { publish: list(values.publish) } : {}),
  };
  process.stdout.write(`${signToken(claims, signing)}\n`);
  const allows = (name) => (claims[name] ? claims[name].join(', ') || 'none' : 'any');
  console.error(`token: ${login} (${signing.privateKey ? 'ES256' : 'HS256'}), rooms: ${allows('rooms')}, `
    + `subscribe: ${allows('subscribe')}, publish: ${allows('publish')}, `
    + `expires ${new Date(claims.exp * 1000).toISOString().replace('T', ' ').slice(0, 16)} UTC`);
  return 0;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (error) => {
    console.error(`token: ${error.message}`);
    process.exitCode = 1;
  });
}
