import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { GatewayProcess } from '../helpers/gateway-process.js';
import { TEST_SECRET, startGateway, type TestGateway } from '../helpers/gateway.js';
import { call, errorOf, expectRateLimited, metric, mintLimited, statusOf, statuses } from '../helpers/quota-helpers.js';
import { TestRedis } from '../helpers/redis-server.js';

/**
 * API-wide protection that holds whatever token is (or is not) presented: per client address, a
 * limit on minting (API_MINT_LIMITS) and one on refused credentials (API_AUTH_FAILURE_LIMITS).
 * Clients are told apart by X-Forwarded-For under TRUST_PROXY=loopback.
 */

const gateways: TestGateway[] = [];
afterEach(async () => {
  await Promise.all(gateways.splice(0).map((gw) => gw.close()));
});

async function start(env: Record<string, string>): Promise<TestGateway> {
  const gw = await startGateway({ TRUST_PROXY: 'loopback', ...env });
  gateways.push(gw);
  return gw;
}

async function mintFrom(url: string, client: string, body: unknown = { requestAuthAndQuotas: {} }): Promise<Response> {
  return fetch(`${url}/api/v1/oauth/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Forwarded-For': client },
    body: JSON.stringify(body),
  });
}

async function mintStatuses(url: string, client: string, count: number): Promise<number[]> {
  return statuses(count, () => mintFrom(url, client));
}

describe('API_MINT_LIMITS: minting per client address', () => {
  it('"3/minute": three mints, then 429 scope api naming window and limit; other addresses and existing tokens unaffected', async () => {
    const { url } = await start({ API_MINT_LIMITS: '3/minute' });
    const earlier = await mintLimited(url, {}, { 'X-Forwarded-For': '1.1.1.1' });
    expect(await mintStatuses(url, '1.1.1.1', 2)).toEqual([200, 200]);
    const mintedBefore = await metric(url, 'aisbgw_tokens_minted_total', { kind: 'new' });
    const refused = await mintFrom(url, '1.1.1.1');
    const { retryAfter, message } = await expectRateLimited(refused, { scope: 'api', window: 'minute', limit: 3 });
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(message).toContain('3 requests per minute');
    expect(await mintStatuses(url, '1.1.1.1', 3)).toEqual([429, 429, 429]);
    // refused mints made no token
    expect(await metric(url, 'aisbgw_tokens_minted_total', { kind: 'new' })).toBe(mintedBefore);
    // the address's tokens keep working, and other addresses mint as before
    expect(await statuses(3, () => call(url, earlier, '1.1.1.1'))).toEqual([200, 200, 200]);
    expect(await mintStatuses(url, '2.2.2.2', 3)).toEqual([200, 200, 200]);
    expect(await mintStatuses(url, '2.2.2.2', 1)).toEqual([429]);
  });

  it('several windows: the hour can be the one that refuses', async () => {
    const { url } = await start({ API_MINT_LIMITS: '100/minute,4/hour' });
    expect(await mintStatuses(url, '3.3.3.3', 4)).toEqual([200, 200, 200, 200]);
    const { retryAfter } = await expectRateLimited(await mintFrom(url, '3.3.3.3'), { scope: 'api', window: 'hour', limit: 4 });
    expect(retryAfter).toBeGreaterThan(60);
    expect(retryAfter).toBeLessThanOrEqual(3600);
  });

  it('"off" disables the limit', async () => {
    const { url } = await start({ API_MINT_LIMITS: 'off' });
    expect(await mintStatuses(url, '4.4.4.4', 25)).toEqual(Array<number>(25).fill(200));
  });

  it('bad mint bodies count against the limit too (they cost the server work), and are refused with their 400 until then', async () => {
    const { url } = await start({ API_MINT_LIMITS: '2/minute' });
    const bad = { requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { requestsPerMinute: -1 } } } };
    const first = await mintFrom(url, '5.5.5.5', bad);
    expect(first.status).toBe(400);
    expect((await errorOf(first)).code).toBe('INVALID_REQUEST');
    expect(await mintStatuses(url, '5.5.5.5', 2)).toEqual([200, 429]);
  });
});

describe('API_AUTH_FAILURE_LIMITS: refused credentials per client address', () => {
  it('"3/minute": three refused credentials, then 429 scope api; other addresses unaffected', async () => {
    const { url } = await start({ API_AUTH_FAILURE_LIMITS: '3/minute' });
    const token = await mintLimited(url, {}, { 'X-Forwarded-For': '9.9.9.9' });
    const codes: string[] = [];
    for (const credential of ['aisbreaker_garbage', undefined, 'not-a-key-of-this-server']) {
      const res = await call(url, credential, '6.6.6.6');
      expect(res.status).toBe(401);
      codes.push((await errorOf(res)).code);
    }
    expect(codes).toEqual(['INVALID_API_KEY', 'MISSING_API_KEY', 'INVALID_API_KEY']);
    await expectRateLimited(await call(url, 'aisbreaker_garbage', '6.6.6.6'), { scope: 'api', window: 'minute', limit: 3 });
    // once blocked, the address gets 429 for anything that could be guessed or was refused, but a
    // valid token (which no guess can produce) is still served: a guesser cannot lock others out
    expect(await statusOf(await call(url, token, '6.6.6.6'))).toBe(200);
    await expectRateLimited(await call(url, 'not-a-key-of-this-server', '6.6.6.6'), { scope: 'api', window: 'minute', limit: 3 });
    await expectRateLimited(await call(url, undefined, '6.6.6.6'), { scope: 'api', window: 'minute', limit: 3 });
    // other addresses: valid tokens served, bad ones refused with their 401
    expect(await statusOf(await call(url, token, '7.7.7.7'))).toBe(200);
    const other = await call(url, 'aisbreaker_garbage', '7.7.7.7');
    expect(other.status).toBe(401);
    expect((await errorOf(other)).code).toBe('INVALID_API_KEY');
  });

  it('valid tokens never count as failures, not even when their own quota refuses them', async () => {
    const { url } = await start({ API_AUTH_FAILURE_LIMITS: '3/minute' });
    const token = await mintLimited(url, { client: { requestsPerMinute: 2 } }, { 'X-Forwarded-For': '8.8.8.8' });
    const results = await statuses(12, () => call(url, token, '8.8.8.8'));
    expect(results).toEqual([200, 200, ...Array<number>(10).fill(429)]);
    const next = await call(url, token, '8.8.8.8');
    await expectRateLimited(next, { scope: 'client', window: 'minute', limit: 2 });
    // the address has used none of its 3 failures
    expect(await statuses(3, () => call(url, 'aisbreaker_garbage', '8.8.8.8'))).toEqual([401, 401, 401]);
    await expectRateLimited(await call(url, 'aisbreaker_garbage', '8.8.8.8'), { scope: 'api', window: 'minute', limit: 3 });
  });

  it('wrong admin keys on introspection and revocation by jti count as refused credentials: guessing the key is limited too', async () => {
    const adminKey = 'the-operators-admin-key-0123456789';
    const { url } = await start({ API_AUTH_FAILURE_LIMITS: '3/minute', AISBREAKER_ADMIN_KEY: adminKey });
    const operator = (path: string, key: string, body: Record<string, string>, client: string): Promise<Response> =>
      fetch(`${url}${path}`, { method: 'POST', headers: { Authorization: `Bearer ${key}`, 'X-Forwarded-For': client }, body: new URLSearchParams(body) });
    const guesses = [
      await operator('/api/v1/oauth/introspect', 'guess-one-0123456789', { token: 'aisbreaker_x' }, '5.5.5.5'),
      await operator('/api/v1/oauth/revoke', 'guess-two-0123456789', { jti: 'abcdefghijklmnop0123' }, '5.5.5.5'),
      await operator('/api/v1/oauth/introspect', 'guess-three-0123456789', { token: 'aisbreaker_x' }, '5.5.5.5'),
    ];
    expect(guesses.map((r) => r.status)).toEqual([403, 403, 403]);
    // the fourth guess, and then even the right key, from that address: 429 until the window passes
    await expectRateLimited(await operator('/api/v1/oauth/revoke', 'guess-four-0123456789', { jti: 'abcdefghijklmnop0123' }, '5.5.5.5'), { scope: 'api', window: 'minute', limit: 3 });
    await expectRateLimited(await operator('/api/v1/oauth/introspect', adminKey, { token: 'aisbreaker_x' }, '5.5.5.5'), { scope: 'api', window: 'minute', limit: 3 });
    // the operator elsewhere is not affected, and the right key never counts
    for (let i = 0; i < 5; i++) expect((await operator('/api/v1/oauth/introspect', adminKey, { token: 'aisbreaker_x' }, '6.6.6.6')).status).toBe(200);
  });

  it('"off" disables the limit', async () => {
    const { url } = await start({ API_AUTH_FAILURE_LIMITS: 'off' });
    expect(await statuses(40, () => call(url, 'aisbreaker_garbage', '6.6.6.6'))).toEqual(Array<number>(40).fill(401));
  });
});

describe('API limits with Redis are shared by every instance', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await TestRedis.start();
  });
  afterAll(() => redis.stop());

  it('mints on two instances count together against one limit', async () => {
    const env = { REDIS_URL: redis.url, API_MINT_LIMITS: '3/minute', API_AUTH_FAILURE_LIMITS: '2/minute' };
    const [one, two] = [await start(env), await start(env)];
    expect(await mintStatuses(one.url, '1.2.3.4', 2)).toEqual([200, 200]);
    expect(await mintStatuses(two.url, '1.2.3.4', 1)).toEqual([200]);
    await expectRateLimited(await mintFrom(one.url, '1.2.3.4'), { scope: 'api', window: 'minute', limit: 3 });
    await expectRateLimited(await mintFrom(two.url, '1.2.3.4'), { scope: 'api', window: 'minute', limit: 3 });
    // refused credentials too
    expect(await statusOf(await call(one.url, 'aisbreaker_garbage', '4.3.2.1'))).toBe(401);
    expect(await statusOf(await call(two.url, 'aisbreaker_garbage', '4.3.2.1'))).toBe(401);
    await expectRateLimited(await call(one.url, 'aisbreaker_garbage', '4.3.2.1'), { scope: 'api', window: 'minute', limit: 2 });
  });

  it('with Redis down the limits still hold per instance (no fail-open), and nobody else is blocked', async () => {
    const env = { REDIS_URL: redis.url, API_MINT_LIMITS: '2/minute', REDIS_COMMAND_TIMEOUT_MS: '300' };
    const gw = await start(env);
    await redis.kill();
    try {
      const results = await mintStatuses(gw.url, '5.6.7.8', 4);
      expect(results).toEqual([200, 200, 429, 429]);
      expect(await mintStatuses(gw.url, '8.7.6.5', 1)).toEqual([200]);
    } finally {
      await redis.restart();
    }
  });
});

describe('settings', () => {
  it('defaults follow AIsBreaker: minting 60/minute, 360/hour, 8640/day; refused credentials 30/minute, 300/hour', () => {
    const config = loadConfig({ AISBREAKER_SECRET: TEST_SECRET });
    expect(config.mintLimits).toEqual([
      { count: 60, window: 'minute' },
      { count: 360, window: 'hour' },
      { count: 8640, window: 'day' },
    ]);
    expect(config.authFailureLimits).toEqual([
      { count: 30, window: 'minute' },
      { count: 300, window: 'hour' },
    ]);
  });

  it('a bad limit stops the start with one clear line per problem', async () => {
    const error = await GatewayProcess.start({ API_MINT_LIMITS: '3/fortnight,0/minute', API_AUTH_FAILURE_LIMITS: 'many' }).then(
      async (gw) => {
        await gw.stop();
        return undefined;
      },
      (err: unknown) => err as Error,
    );
    expect(error, 'the gateway started with bad API limits').toBeInstanceOf(Error);
    expect(error?.message).toContain('exited with 2');
    expect(error?.message).toContain('config error: API_MINT_LIMITS: "3/fortnight"');
    expect(error?.message).toContain('config error: API_MINT_LIMITS: "0/minute"');
    expect(error?.message).toContain('config error: API_AUTH_FAILURE_LIMITS: "many"');
  });
});
