#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, orExitOnConfigError, type Config } from './config.js';
import { ApiError } from './errors.js';
import { generateKey } from './keys/directory.js';
import { generateSecret, readSecretFile, secretFileOf } from './server-secret.js';
import { hostOfSubject } from './token/claims.js';
import { TokenError, mintToken, openToken } from './token/codec.js';
import { Keyring } from './token/keyring.js';
import { parseMintRequest } from './token/mint-request.js';

const USAGE = `usage: aisbreaker-gateway <command> [options]

commands:
  serve                     run the gateway (same as npm start)
  gen-secret                print a new random server secret (for AISBREAKER_SECRET)
  gen-key [--project <p>] [--role <r>]
                            print a new operator API key and its (hashed) config entry
  mint [options]            mint a token offline with the configured secret
      --file <path|->         the mint body as JSON (as for POST /api/v1/oauth/token)
      --host <host>           host the token is bound to (default: localhost)
      --expires <span>        e.g. 2h, 30d (default: 2h)
      --secret <id=secret>    a serviceSecrets entry (repeatable)
      --client-rpm/--client-rph/--client-rpd <n>   per-client request limits
      --global-rpm/--global-rph/--global-rpd <n>   global request limits
  inspect <token|->         decrypt a token and print its claims, secrets redacted
  revoke <token|-> | --jti=<id> [--url <gateway>]
                            revoke a token at a running gateway (default http://127.0.0.1:3000);
                            by jti needs AISBREAKER_ADMIN_KEY in the environment

  help, <command> --help     print this and exit

mint and inspect use the server's secret: AISBREAKER_SECRET, or the secret file the server
generated (.data/secret in its folder, or in AISBREAKER_DATA_DIR); they never make a new one.`;

function fail(message: string): never {
  console.error(message);
  process.exit(1);
}

function readInput(pathOrDash: string): string {
  return readFileSync(pathOrDash === '-' ? 0 : pathOrDash, 'utf8').trim();
}

function serverKeyring(): { keyring: Keyring; maxTokenLifetimeMs: number } {
  const config = orExitOnConfigError(() => loadConfig());
  return { keyring: new Keyring(serverSecret(config), config.previousSecrets, config.legacyKeyphrases), maxTokenLifetimeMs: config.maxTokenLifetimeMs };
}

/**
 * The secret the server uses: AISBREAKER_SECRET, or the one it generated and keeps in its data
 * directory. Unlike the server, the CLI never generates one: a token made with a fresh secret
 * would be refused by the server it was meant for.
 */
function serverSecret(config: Config): string {
  if (config.secret !== undefined) return config.secret;
  const file = resolvePath(secretFileOf(config));
  const stored = orExitOnConfigError(() => readSecretFile(file));
  if (stored === undefined) {
    fail(`error: no server secret: AISBREAKER_SECRET is not set and ${file} does not exist.
Set AISBREAKER_SECRET to the server's secret, or run this in the server's folder (or set AISBREAKER_DATA_DIR to its data directory).`);
  }
  console.error(`note: AISBREAKER_SECRET is not set: using the secret the server generated, from ${file}`);
  return stored;
}

function limitsFromFlags(values: Record<string, unknown>, scope: 'client' | 'global'): Record<string, number> | undefined {
  const limits: Record<string, number> = {};
  const windows = { rpm: 'requestsPerMinute', rph: 'requestsPerHour', rpd: 'requestsPerDay' } as const;
  for (const [flag, field] of Object.entries(windows)) {
    const value = values[`${scope}-${flag}`];
    if (typeof value === 'string') limits[field] = Number(value);
  }
  return Object.keys(limits).length > 0 ? limits : undefined;
}

async function mint(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      file: { type: 'string' },
      host: { type: 'string', default: 'localhost' },
      expires: { type: 'string' },
      secret: { type: 'string', multiple: true },
      'client-rpm': { type: 'string' },
      'client-rph': { type: 'string' },
      'client-rpd': { type: 'string' },
      'global-rpm': { type: 'string' },
      'global-rph': { type: 'string' },
      'global-rpd': { type: 'string' },
    },
  });
  const body = values.file
    ? (JSON.parse(readInput(values.file)) as Record<string, unknown>)
    : {
        requestAuthAndQuotas: {
          requestQuotas: { perClientRequestLimits: limitsFromFlags(values, 'client'), globalRequestLimits: limitsFromFlags(values, 'global') },
          serviceSecrets: (values.secret ?? []).map((entry) => {
            const at = entry.indexOf('=');
            if (at < 0) fail(`--secret must be serviceId=secret`);
            return { serviceId: entry.slice(0, at), authSecret: entry.slice(at + 1) };
          }),
        },
      };
  if (values.expires) body.expirationTimeSpan = values.expires;
  const { keyring, maxTokenLifetimeMs } = serverKeyring();
  const request = parseMintRequest(body, maxTokenLifetimeMs);
  const { token, claims } = await mintToken({ host: values.host, ...request }, keyring, Date.now());
  console.log(JSON.stringify({ access_token: token, token_type: 'Bearer', expires_in: claims.exp - claims.iat }, null, 2));
}

async function inspect(args: string[]): Promise<void> {
  const input = args[0];
  if (!input) fail('inspect needs a token (or - to read it from stdin)');
  const token = input === '-' ? readInput('-') : input;
  const { keyring } = serverKeyring();
  // time 0: open expired tokens too, so an operator can see when they expired
  const { claims, legacy } = await openToken(token, keyring, 0);
  const now = Math.floor(Date.now() / 1000);
  const redacted = {
    ...claims,
    serviceSecrets: claims.serviceSecrets.map((s) => ({ serviceId: s.serviceId, authSecret: '[redacted]' })),
  };
  console.log(
    JSON.stringify(
      {
        host: hostOfSubject(claims.sub),
        legacy,
        issuedAt: new Date(claims.iat * 1000).toISOString(),
        expiresAt: new Date(claims.exp * 1000).toISOString(),
        expired: claims.exp <= now,
        claims: redacted,
      },
      null,
      2,
    ),
  );
}

async function revoke(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { jti: { type: 'string' }, url: { type: 'string', default: `http://127.0.0.1:${process.env.PORT ?? 3000}` } },
  });
  const input = positionals[0];
  if (!input && !values.jti) fail('revoke needs a token (or - to read it from stdin), or --jti=<id>');
  const form = new URLSearchParams();
  if (input) form.set('token', input === '-' ? readInput('-') : input);
  if (values.jti) form.set('jti', values.jti);
  const adminKey = process.env.AISBREAKER_ADMIN_KEY;
  if (!URL.canParse(values.url) || !/^https?:$/.test(new URL(values.url).protocol)) fail(`error: --url "${values.url}" is not an http(s) URL of a gateway`);
  const endpoint = new URL('/api/v1/oauth/revoke', values.url);
  const res = await fetch(endpoint, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...(adminKey ? { Authorization: `Bearer ${adminKey}` } : {}) },
    body: form,
  }).catch((err: unknown) => {
    // fetch says only "fetch failed"; its cause names what happened (ECONNREFUSED, ENOTFOUND, ...)
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return fail(`error: cannot reach the gateway at ${endpoint.origin}: ${cause?.code ?? cause?.message ?? String(err)} (is it running? --url names it)`);
  });
  const text = await res.text();
  if (!res.ok) fail(`revoke failed (${res.status}): ${text}`);
  console.log(text);
  const answer = JSON.parse(text) as { revoked?: boolean };
  if (!answer.revoked) process.exit(1);
}

function genKey(args: string[]): void {
  const { values } = parseArgs({ args, options: { project: { type: 'string', default: 'my-project' }, role: { type: 'string', default: 'default' } } });
  const { key, hashed } = generateKey();
  console.log(`key (give it to the client; it is shown only now): ${key}`);
  console.log('config entry for "keys" in AISBREAKER_CONFIG (holds only the hash):');
  console.log(JSON.stringify({ [hashed]: { project: values.project, role: values.role } }, null, 2));
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(USAGE);
    return;
  }
  switch (command) {
    case 'serve': {
      const config = orExitOnConfigError(() => loadConfig());
      const { serve } = await import('./server.js');
      await serve(config);
      return;
    }
    case 'gen-secret':
      console.log(generateSecret());
      return;
    case 'gen-key':
      return genKey(rest);
    case 'mint':
      return mint(rest);
    case 'inspect':
      return inspect(rest);
    case 'revoke':
      return revoke(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return;
    default:
      fail(`unknown command "${command}"\n\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof ApiError || err instanceof TokenError) fail(`error: ${err.message}`);
  // node:util parseArgs: an unknown option or a missing value
  if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS_')) fail(`error: ${(err as Error).message}\n\n${USAGE}`);
  if (err instanceof SyntaxError) fail(`error: the input is not valid JSON`);
  fail(`error: ${err instanceof Error ? err.message : String(err)}`);
});
