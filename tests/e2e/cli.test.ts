import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../helpers/clock.js';
import { ROOT } from '../helpers/deploy-recipes.js';
import { freePort } from '../helpers/ports.js';
import { GatewayProcess } from '../helpers/gateway-process.js';
import { TEST_SECRET, mint, startGateway, type TestGateway } from '../helpers/gateway.js';
import { DOCS_MINT_BODY, expectError, expectServes, getJson, runCli, tamperToken, useToken, type MintAnswer } from '../helpers/lifecycle-helpers.js';

/** The CLI runs from dist/: `npm run build` first (npm test does). */

const UPSTREAM_SECRET = 'sk-cli-test-secret-1618033988749895';
const ADMIN_KEY = 'cli-test-admin-key-5a4b3c2d1e';

interface Inspected {
  host: string;
  legacy: boolean;
  issuedAt: string;
  expiresAt: string;
  expired: boolean;
  claims: { sub: string; jti: string; iat: number; exp: number; requestQuotas: unknown; serviceSecrets: { serviceId: string; authSecret: string }[] };
}

function parseMinted(stdout: string): MintAnswer {
  return JSON.parse(stdout) as MintAnswer;
}

// the tests are independent (each mints its own tokens): run them side by side, each CLI run is a process of its own
describe.concurrent('CLI against a running gateway with the same secret', { timeout: 60_000 }, () => {
  let gw: TestGateway;
  let dir: string;
  beforeAll(async () => {
    gw = await startGateway({ AISBREAKER_ADMIN_KEY: ADMIN_KEY });
    dir = mkdtempSync(join(tmpdir(), 'aisbgw-cli-'));
  });
  afterAll(async () => {
    await gw.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gen-secret prints a new 32-byte base64url secret each time, which a gateway accepts', async () => {
    const [a, b] = await Promise.all([runCli(['gen-secret']), runCli(['gen-secret'])]);
    expect(a.code).toBe(0);
    const secret = a.stdout.trim();
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(secret, 'base64url')).toHaveLength(32);
    expect(b.stdout.trim()).not.toBe(secret);
    const other = await startGateway({ AISBREAKER_SECRET: secret });
    try {
      await expectServes(other.url, await mint(other.url));
    } finally {
      await other.close();
    }
  });

  it('gen-key prints a key and a config entry holding only its hash', async () => {
    const res = await runCli(['gen-key', '--project', 'billing', '--role', 'basic']);
    expect(res.code).toBe(0);
    const key = /: (aisbk_[A-Za-z0-9_-]+)\n/.exec(res.stdout)?.[1];
    expect(key).toBeDefined();
    const entry = JSON.parse(res.stdout.slice(res.stdout.indexOf('{'))) as Record<string, { project: string; role: string }>;
    const [hashed, value] = Object.entries(entry)[0] ?? [];
    expect(hashed).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(value).toEqual({ project: 'billing', role: 'basic' });
    expect(res.stdout.slice(res.stdout.indexOf('{'))).not.toContain(key ?? 'unreachable');
  });

  it('mint (flags) makes a token the gateway accepts, with the flags\' limits, services, expiry and host', async () => {
    const res = await runCli([
      'mint', '--host', '127.0.0.1', '--expires', '30d', '--secret', `chat:dummy=${UPSTREAM_SECRET}`, '--secret', 'chat:echo=sk-echo-0000000000',
      '--client-rpm', '2', '--global-rpd', '5000',
    ]);
    expect(res.code, res.stderr).toBe(0);
    const minted = parseMinted(res.stdout);
    expect(minted.token_type).toBe('Bearer');
    expect(minted.expires_in).toBe(30 * 86400);
    const info = await getJson<{ host: string; services: string[]; requestQuotas: unknown; exp: number; iat: number }>(`${gw.url}/api/v1/oauth/tokeninfo`, {
      Authorization: `Bearer ${minted.access_token}`,
    });
    expect(info.status, info.text).toBe(200);
    expect(info.json.host).toBe('127.0.0.1');
    expect(info.json.services).toEqual(['chat:dummy', 'chat:echo']);
    expect(info.json.requestQuotas).toEqual({ perClientRequestLimits: { requestsPerMinute: 2 }, globalRequestLimits: { requestsPerDay: 5000 } });
    expect(info.json.exp - info.json.iat).toBe(30 * 86400);
    await expectServes(gw.url, minted.access_token);
    expect((await useToken(gw.url, minted.access_token)).status).toBe(200);
    expectError(await useToken(gw.url, minted.access_token), 429, 'RATE_LIMITED');
  });

  it('mint binds to localhost by default: on 127.0.0.1 it is 401 WRONG_HOST', async () => {
    const res = await runCli(['mint']);
    expect(res.code, res.stderr).toBe(0);
    const minted = parseMinted(res.stdout);
    expect(minted.expires_in).toBe(7200);
    expectError(await useToken(gw.url, minted.access_token), 401, 'WRONG_HOST');
  });

  it('mint --file takes the AIsBreaker mint body, from a file or from stdin', async () => {
    const file = join(dir, 'body.json');
    writeFileSync(file, JSON.stringify(DOCS_MINT_BODY));
    const fromFile = await runCli(['mint', '--file', file, '--host', '127.0.0.1']);
    expect(fromFile.code, fromFile.stderr).toBe(0);
    expect(parseMinted(fromFile.stdout).expires_in).toBe(30 * 86400);
    const fromStdin = await runCli(['mint', '--file', '-', '--host', '127.0.0.1', '--expires', '1h'], {}, JSON.stringify(DOCS_MINT_BODY));
    expect(fromStdin.code, fromStdin.stderr).toBe(0);
    expect(parseMinted(fromStdin.stdout).expires_in).toBe(3600);
    for (const minted of [parseMinted(fromFile.stdout), parseMinted(fromStdin.stdout)]) {
      const info = await getJson<{ requestQuotas: unknown }>(`${gw.url}/api/v1/oauth/tokeninfo`, { Authorization: `Bearer ${minted.access_token}` });
      expect(info.json.requestQuotas).toEqual(DOCS_MINT_BODY.requestAuthAndQuotas.requestQuotas);
    }
  });

  it('mint refuses what the endpoint refuses, naming the field, exit code 1, no token printed', async () => {
    const cases: [string[], string][] = [
      [['mint', '--client-rpm=-1'], 'requestAuthAndQuotas.requestQuotas.perClientRequestLimits.requestsPerMinute'],
      [['mint', '--expires', '400d'], 'expirationTimeSpan'],
      [['mint', '--secret', 'no-equals-sign'], '--secret'],
    ];
    const results = await Promise.all(cases.map(([args]) => runCli(args)));
    results.forEach((res, i) => {
      expect(res.code, cases[i]?.[0].join(' ')).toBe(1);
      expect(res.stderr).toContain(cases[i]?.[1]);
      expect(res.stdout).not.toContain('aisbreaker_');
      expect(res.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
    });
    const notJson = await runCli(['mint', '--file', '-'], {}, '{"requestAuthAndQuotas":');
    expect(notJson.code).toBe(1);
    expect(notJson.stderr).toContain('not valid JSON');
  });

  it('inspect prints the claims of a token with every secret redacted (argument or stdin)', async () => {
    const token = await mint(
      gw.url,
      {
        requestAuthAndQuotas: {
          requestQuotas: { globalRequestLimits: { requestsPerMinute: 7 } },
          serviceSecrets: [
            { serviceId: 'chat:openai.com', authSecret: UPSTREAM_SECRET },
            { serviceId: '', authSecret: 'sk-catch-all-secret-000000000000' },
          ],
        },
        expirationTimeSpan: '2h',
      },
      { Authorization: `Bearer ${ADMIN_KEY}` },
    );
    const [byArg, byStdin] = await Promise.all([runCli(['inspect', token]), runCli(['inspect', '-'], {}, token + '\n')]);
    for (const res of [byArg, byStdin]) {
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).not.toContain(UPSTREAM_SECRET);
      expect(res.stdout).not.toContain('sk-catch-all-secret');
      const inspected = JSON.parse(res.stdout) as Inspected;
      expect(inspected.host).toBe('127.0.0.1');
      expect(inspected.legacy).toBe(false);
      expect(inspected.expired).toBe(false);
      expect(inspected.claims.sub).toBe('127.0.0.1#aisbreaker');
      expect(inspected.claims.exp - inspected.claims.iat).toBe(7200);
      expect(new Date(inspected.expiresAt).getTime()).toBe(inspected.claims.exp * 1000);
      expect(inspected.claims.requestQuotas).toEqual({ globalRequestLimits: { requestsPerMinute: 7 } });
      expect(inspected.claims.serviceSecrets).toEqual([
        { serviceId: 'chat:openai.com', authSecret: '[redacted]' },
        { serviceId: '', authSecret: '[redacted]' },
      ]);
    }
    // the jti is the one the gateway knows
    const info = await getJson<{ jti: string }>(`${gw.url}/api/v1/oauth/tokeninfo`, { Authorization: `Bearer ${token}` });
    expect((JSON.parse(byArg.stdout) as Inspected).claims.jti).toBe(info.json.jti);
  });

  it('inspect shows an expired token as expired', async () => {
    const past = await startGateway({}, { clock: new ManualClock(Date.UTC(2020, 0, 1)).read });
    try {
      const token = await mint(past.url, { requestAuthAndQuotas: {}, expirationTimeSpan: '1h' });
      const res = await runCli(['inspect', token]);
      expect(res.code, res.stderr).toBe(0);
      const inspected = JSON.parse(res.stdout) as Inspected;
      expect(inspected.expired).toBe(true);
      expect(inspected.expiresAt).toBe('2020-01-01T01:00:00.000Z');
    } finally {
      await past.close();
    }
  });

  it('mint uses the configured secret; inspect refuses a token it cannot open (other secret, tampered) with exit 1 and a message', async () => {
    const foreign = parseMinted((await runCli(['mint', '--host', '127.0.0.1'], { AISBREAKER_SECRET: 'another-servers-secret-abcdefghijklmnopqrstuvwxyz' })).stdout).access_token;
    // mint uses the configured secret: this gateway has another one and refuses the token
    expectError(await useToken(gw.url, foreign), 401, 'INVALID_API_KEY');
    const token = await mint(gw.url, { requestAuthAndQuotas: {} }, { Authorization: `Bearer ${ADMIN_KEY}` });
    const results = await Promise.all([runCli(['inspect', foreign]), runCli(['inspect', tamperToken(token)])]);
    for (const res of results) {
      expect(res.code).toBe(1);
      expect(res.stdout).toBe('');
      expect(res.stderr.length).toBeGreaterThan(0);
      expect(res.stderr).not.toMatch(/\n\s+at /);
    }
    // the foreign token opens with the right secret
    const withRight = await runCli(['inspect', foreign], { AISBREAKER_SECRET: 'another-servers-secret-abcdefghijklmnopqrstuvwxyz' });
    expect(withRight.code).toBe(0);
  });

  it('revoke revokes a token at a running gateway; the token is then 401 REVOKED_API_KEY', async () => {
    const token = await mint(gw.url, { requestAuthAndQuotas: {} }, { Authorization: `Bearer ${ADMIN_KEY}` });
    await expectServes(gw.url, token);
    const res = await runCli(['revoke', token, '--url', gw.url]);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ revoked: true });
    expectError(await useToken(gw.url, token), 401, 'REVOKED_API_KEY');
    // from stdin too
    const other = await mint(gw.url, { requestAuthAndQuotas: {} }, { Authorization: `Bearer ${ADMIN_KEY}` });
    const viaStdin = await runCli(['revoke', '-', '--url', gw.url], {}, other);
    expect(viaStdin.code, viaStdin.stderr).toBe(0);
    expectError(await useToken(gw.url, other), 401, 'REVOKED_API_KEY');
  });

  it('revoke --jti needs AISBREAKER_ADMIN_KEY in the environment', async () => {
    const token = await mint(gw.url, { requestAuthAndQuotas: {} }, { Authorization: `Bearer ${ADMIN_KEY}` });
    const info = await getJson<{ jti: string }>(`${gw.url}/api/v1/oauth/tokeninfo`, { Authorization: `Bearer ${token}` });
    const without = await runCli(['revoke', `--jti=${info.json.jti}`, '--url', gw.url]);
    expect(without.code).toBe(1);
    expect(without.stderr).toContain('403');
    await expectServes(gw.url, token);
    const withKey = await runCli(['revoke', `--jti=${info.json.jti}`, '--url', gw.url], { AISBREAKER_ADMIN_KEY: ADMIN_KEY });
    expect(withKey.code, withKey.stderr).toBe(0);
    expect(JSON.parse(withKey.stdout)).toEqual({ revoked: true, jti: info.json.jti });
    expectError(await useToken(gw.url, token), 401, 'REVOKED_API_KEY');
  });

  it('revoke of something that is not a token of the gateway exits 1', async () => {
    const garbage = await runCli(['revoke', 'aisbreaker_garbage', '--url', gw.url]);
    expect(garbage.code).toBe(1);
    expect(JSON.parse(garbage.stdout)).toMatchObject({ revoked: false });
  });

  it('refuses unknown commands with the usage', async () => {
    const unknown = await runCli(['frobnicate']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('unknown command "frobnicate"');
    for (const command of ['serve', 'gen-secret', 'gen-key', 'mint', 'inspect', 'revoke']) expect(unknown.stderr).toContain(command);
  });

  it('prints the usage and exits 0 for help, --help, -h, <command> --help and no command', async () => {
    for (const args of [[], ['help'], ['--help'], ['-h'], ['mint', '--help'], ['revoke', '-h'], ['inspect', '--help']]) {
      const res = await runCli(args);
      expect(res.code, args.join(' ')).toBe(0);
      expect(res.stdout, args.join(' ')).toContain('usage: aisbreaker-gateway <command>');
      expect(res.stderr, args.join(' ')).toBe('');
    }
  });

  it('refuses an unknown option or a missing value naming it, with the usage, exit 1', async () => {
    const unknown = await runCli(['mint', '--client-rpx', '5']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("Unknown option '--client-rpx'");
    expect(unknown.stderr).toContain('usage: aisbreaker-gateway');
    const missing = await runCli(['mint', '--host']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('--host');
    expect(missing.stdout).not.toContain('aisbreaker_');
  });

  it('revoke --url to a gateway that is down names the address and the cause', async () => {
    const token = await mint(gw.url, { requestAuthAndQuotas: {} }, { Authorization: `Bearer ${ADMIN_KEY}` });
    const down = `http://127.0.0.1:${await freePort()}`;
    const res = await runCli(['revoke', token, '--url', down]);
    expect(res.code).toBe(1);
    expect(res.stderr).toBe(`error: cannot reach the gateway at ${down}: ECONNREFUSED (is it running? --url names it)\n`);
    expect(res.stderr).not.toContain(token);
    const bad = await runCli(['revoke', token, '--url', 'localhost:3000']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--url "localhost:3000" is not an http(s) URL');
  });
});

describe.concurrent('server secret: generated and persisted when unset, refused when too short', { timeout: 60_000 }, () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'aisbgw-secret-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('generates .data/secret (mode 0600), warns naming the file but not the secret; CLI mint and inspect use the same file', async () => {
    const dataDir = join(dir, 'data');
    const gw = await GatewayProcess.start({ AISBREAKER_SECRET: '', AISBREAKER_DATA_DIR: dataDir });
    try {
      const file = join(dataDir, 'secret');
      const secret = readFileSync(file, 'utf8').trim();
      expect(secret.length).toBeGreaterThanOrEqual(32);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const warning = gw.output.find((line) => line.includes('AISBREAKER_SECRET is not set'));
      expect(warning).toBeDefined();
      expect(warning).toContain(file);
      expect(gw.output.join('\n')).not.toContain(secret);

      const token = await mint(gw.url);
      await expectServes(gw.url, token);
      const minted = await runCli(['mint', '--host', '127.0.0.1'], { AISBREAKER_SECRET: '', AISBREAKER_DATA_DIR: dataDir });
      expect(minted.code, minted.stderr).toBe(0);
      await expectServes(gw.url, parseMinted(minted.stdout).access_token);
      const inspected = await runCli(['inspect', token], { AISBREAKER_SECRET: '', AISBREAKER_DATA_DIR: dataDir });
      expect(inspected.code, inspected.stderr).toBe(0);
      expect(inspected.stdout).not.toContain(secret);
    } finally {
      expect(await gw.stop()).toBe(0);
    }
    // the file is kept: a restart (or any other process) uses the same secret
    expect(readFileSync(join(dataDir, 'secret'), 'utf8').trim()).toHaveLength(43);
  }, 60_000);

  it('CLI mint elsewhere without AISBREAKER_SECRET refuses, naming the missing file, and creates none', async () => {
    const elsewhere = mkdtempSync(join(dir, 'elsewhere-'));
    const res = await runCli(['mint'], { AISBREAKER_SECRET: '' }, undefined, elsewhere);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`AISBREAKER_SECRET is not set and ${join(elsewhere, '.data/secret')} does not exist`);
    expect(res.stdout).toBe('');
    expect(existsSync(join(elsewhere, '.data'))).toBe(false);
    const inspected = await runCli(['inspect', 'aisbreaker_x'], { AISBREAKER_SECRET: '' }, undefined, elsewhere);
    expect(inspected.code).toBe(1);
    expect(inspected.stderr).toContain('no server secret');
  });

  it('CLI mint in the server folder says which secret file it uses; the server accepts the token', async () => {
    const folder = mkdtempSync(join(dir, 'server-'));
    const gw = await GatewayProcess.run([process.execPath, join(ROOT, 'dist/main.js')], { env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0' }, cwd: folder });
    try {
      const res = await runCli(['mint', '--host', '127.0.0.1'], { AISBREAKER_SECRET: '' }, undefined, folder);
      expect(res.code, res.stderr).toBe(0);
      expect(res.stderr).toBe(`note: AISBREAKER_SECRET is not set: using the secret the server generated, from ${join(folder, '.data/secret')}\n`);
      await expectServes(gw.url, parseMinted(res.stdout).access_token);
    } finally {
      expect(await gw.stop()).toBe(0);
    }
  });

  it('refuses to start with a too-short secret, with a clear message that does not echo it', async () => {
    const error = await GatewayProcess.start({ AISBREAKER_SECRET: 'short-secret-123' }).then(
      async (gw) => {
        await gw.stop();
        return undefined;
      },
      (err: unknown) => err as Error,
    );
    expect(error).toBeDefined();
    expect(error?.message).toContain('AISBREAKER_SECRET');
    expect(error?.message).toContain('too short');
    expect(error?.message).not.toContain('short-secret-123');
    const cli = await runCli(['mint'], { AISBREAKER_SECRET: 'short-secret-123' });
    expect(cli.code).not.toBe(0);
    expect(cli.stderr).toContain('AISBREAKER_SECRET');
    expect(cli.stdout).not.toContain('aisbreaker_');
  });
});

void TEST_SECRET;
