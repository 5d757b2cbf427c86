import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../helpers/clock.js';
import { mint, startGateway, type TestGateway } from '../helpers/gateway.js';
import { TestRedis } from '../helpers/redis-server.js';
import {
  expectError,
  expectInvalid,
  expectServes,
  getJson,
  mintRaw,
  postForm,
  postJson,
  postRaw,
  tamperToken,
  useToken,
  within,
  type TokenInfo,
  type Usage,
} from '../helpers/lifecycle-helpers.js';

const ADMIN_KEY = 'lifecycle-admin-key-0f1e2d3c4b5a';
const ADMIN = { Authorization: `Bearer ${ADMIN_KEY}` };
const UPSTREAM_SECRET = 'sk-lifecycle-upstream-secret-112358132134';

interface Introspection extends Partial<TokenInfo> {
  active: boolean;
  token_type?: string;
  sub?: string;
  revoked?: boolean;
}

const QUOTAS = {
  perClientRequestLimits: { requestsPerMinute: 5, requestsPerHour: 10 },
  globalRequestLimits: { requestsPerMinute: 8, requestsPerDay: 100 },
};

function tokenInfo(url: string, token: string, headers: Record<string, string> = {}): Promise<import('../helpers/lifecycle-helpers.js').Answer<TokenInfo>> {
  return getJson<TokenInfo>(`${url}/api/v1/oauth/tokeninfo`, { Authorization: `Bearer ${token}`, ...headers });
}

function usageMap(usage: Usage[]): Record<string, [number, number, number]> {
  return Object.fromEntries(usage.map((u) => [`${u.scope}/${u.window}`, [u.limit, u.used, u.remaining]]));
}

describe('token lifecycle on one gateway (memory store, admin key set)', () => {
  const clock = new ManualClock();
  let gw: TestGateway;
  const mintToken = (body: Parameters<typeof mint>[1] = { requestAuthAndQuotas: {} }): Promise<string> => mint(gw.url, body, ADMIN);
  beforeAll(async () => {
    gw = await startGateway({ AISBREAKER_ADMIN_KEY: ADMIN_KEY, TRUST_PROXY: 'loopback' }, { clock: clock.read });
  });
  afterAll(() => gw.close());

  describe('POST /api/v1/oauth/revoke', () => {
    it('the holder revokes its own token with a form body (RFC 7009), no admin key needed; then 401 REVOKED_API_KEY', async () => {
      const token = await mintToken();
      const other = await mintToken();
      await expectServes(gw.url, token);
      const res = await postForm<{ revoked: boolean; jti: string }>(`${gw.url}/api/v1/oauth/revoke`, { token, token_type_hint: 'access_token' });
      expect(res.status, res.text).toBe(200);
      expect(res.json.revoked).toBe(true);
      expect(res.text).not.toContain(token);
      const error = expectError(await useToken(gw.url, token), 401, 'REVOKED_API_KEY');
      expect(error.type).toBe('authentication_error');
      expectError(await tokenInfo(gw.url, token), 401, 'REVOKED_API_KEY');
      // no child can be derived from it
      expectError(await mintRaw(gw.url, { requestAuthAndQuotas: {} }, { Authorization: `Bearer ${token}` }), 401, 'REVOKED_API_KEY');
      // other tokens are untouched
      await expectServes(gw.url, other);
    });

    it('the holder revokes with a JSON body too', async () => {
      const token = await mintToken();
      const res = await postJson<{ revoked: boolean }>(`${gw.url}/api/v1/oauth/revoke`, { token });
      expect(res.status).toBe(200);
      expect(res.json.revoked).toBe(true);
      expectError(await useToken(gw.url, token), 401, 'REVOKED_API_KEY');
    });

    it('answers 200 for a token that is invalid, unknown or already revoked (RFC 7009 2.2), revoking nothing', async () => {
      const token = await mintToken();
      for (const t of ['aisbreaker_garbage', 'not-even-a-token', tamperToken(token)]) {
        const res = await postForm<{ revoked: boolean }>(`${gw.url}/api/v1/oauth/revoke`, { token: t });
        expect(res.status, t).toBe(200);
        expect(res.json.revoked).toBe(false);
      }
      await expectServes(gw.url, token);
      expect((await postForm<{ revoked: boolean }>(`${gw.url}/api/v1/oauth/revoke`, { token })).json.revoked).toBe(true);
      const again = await postForm<{ revoked: boolean }>(`${gw.url}/api/v1/oauth/revoke`, { token });
      expect(again.status).toBe(200);
      expectError(await useToken(gw.url, token), 401, 'REVOKED_API_KEY');
    });

    it('refuses a request without token (400 naming token), a non-string token, and other content types', async () => {
      expectInvalid(await postForm(`${gw.url}/api/v1/oauth/revoke`, {}), 'token');
      expectInvalid(await postJson(`${gw.url}/api/v1/oauth/revoke`, { token: 42 }), 'token');
      expectInvalid(await postRaw(`${gw.url}/api/v1/oauth/revoke`, 'token=x', 'text/plain'), 'Content-Type');
      expectInvalid(await postRaw(`${gw.url}/api/v1/oauth/revoke`, '{"token":', 'application/json'), '(body)');
    });

    it('the admin revokes any token presented in the body', async () => {
      const token = await mintToken();
      const res = await postForm<{ revoked: boolean; jti: string }>(`${gw.url}/api/v1/oauth/revoke`, { token }, ADMIN);
      expect(res.json.revoked).toBe(true);
      expectError(await useToken(gw.url, token), 401, 'REVOKED_API_KEY');
    });

    it('the admin revokes by jti without holding the token; without (or with a wrong) admin key that is 403', async () => {
      const token = await mintToken();
      const { jti } = (await tokenInfo(gw.url, token)).json;
      expectError(await postForm(`${gw.url}/api/v1/oauth/revoke`, { jti }), 403, 'FORBIDDEN');
      expectError(await postForm(`${gw.url}/api/v1/oauth/revoke`, { jti }, { Authorization: 'Bearer not-the-admin-key-0000' }), 403, 'FORBIDDEN');
      // a token holder is no admin either
      expectError(await postForm(`${gw.url}/api/v1/oauth/revoke`, { jti }, { Authorization: `Bearer ${token}` }), 403, 'FORBIDDEN');
      await expectServes(gw.url, token);
      expectInvalid(await postForm(`${gw.url}/api/v1/oauth/revoke`, { jti: 'bad jti!' }, ADMIN), 'jti');
      const res = await postJson<{ revoked: boolean; jti: string }>(`${gw.url}/api/v1/oauth/revoke`, { jti }, ADMIN);
      expect(res.status, res.text).toBe(200);
      expect(res.json).toEqual({ revoked: true, jti });
      expectError(await useToken(gw.url, token), 401, 'REVOKED_API_KEY');
    });

    it('never logs the revoked token', async () => {
      const token = await mintToken();
      await postForm(`${gw.url}/api/v1/oauth/revoke`, { token });
      expect(gw.logs.join('\n')).toContain('token revoked');
      expect(gw.logs.join('\n')).not.toContain(token.slice(11));
      expect(gw.logs.join('\n')).not.toContain(ADMIN_KEY);
    });
  });

  describe('GET /api/v1/oauth/tokeninfo', () => {
    it('shows jti, host, iat, exp, services and quotas, never a secret', async () => {
      const token = await mintToken({
        requestAuthAndQuotas: {
          requestQuotas: QUOTAS,
          serviceSecrets: [
            { serviceId: 'chat:openai.com', authSecret: UPSTREAM_SECRET },
            { serviceId: 'chat:dummy', authSecret: 'sk-dummy-secret-77777777' },
          ],
        },
        expirationTimeSpan: '3h',
      });
      const res = await tokenInfo(gw.url, token);
      expect(res.status, res.text).toBe(200);
      expect(res.headers.get('cache-control')).toBe('no-store');
      const info = res.json;
      expect(info.active).toBe(true);
      expect(info.jti).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(info.host).toBe('127.0.0.1');
      expect(info.iat).toBe(Math.floor(clock.now / 1000));
      expect(info.exp).toBe(info.iat + 3 * 3600);
      expect(info.expires_in).toBe(3 * 3600);
      expect(info.services).toEqual(['chat:openai.com', 'chat:dummy']);
      expect(info.requestQuotas).toEqual(QUOTAS);
      expect(res.text).not.toContain(UPSTREAM_SECRET);
      expect(res.text).not.toContain('sk-dummy-secret');
      expect(res.text).not.toContain('authSecret');
      expect(res.text).not.toContain(token.slice(11));
    });

    it('reports used and remaining per window and scope for the calling client, without counting itself', async () => {
      const token = await mintToken({ requestAuthAndQuotas: { requestQuotas: QUOTAS } });
      expect(usageMap((await tokenInfo(gw.url, token)).json.usage)).toEqual({
        'client/minute': [5, 0, 5],
        'client/hour': [10, 0, 10],
        'global/minute': [8, 0, 8],
        'global/day': [100, 0, 100],
      });
      const clientA = { 'X-Forwarded-For': '203.0.113.1' };
      const clientB = { 'X-Forwarded-For': '203.0.113.2' };
      for (let i = 0; i < 3; i++) expect((await useToken(gw.url, token, 'x', clientA)).status).toBe(200);
      const a = await tokenInfo(gw.url, token, clientA);
      const expectedA = { 'client/minute': [5, 3, 2], 'client/hour': [10, 3, 7], 'global/minute': [8, 3, 5], 'global/day': [100, 3, 97] };
      expect(usageMap(a.json.usage)).toEqual(expectedA);
      // asking again changes nothing: tokeninfo is not a request against the quota
      expect(usageMap((await tokenInfo(gw.url, token, clientA)).json.usage)).toEqual(expectedA);
      // another client sees its own per-client usage and the shared global usage
      expect(usageMap((await tokenInfo(gw.url, token, clientB)).json.usage)).toEqual({
        'client/minute': [5, 0, 5],
        'client/hour': [10, 0, 10],
        'global/minute': [8, 3, 5],
        'global/day': [100, 3, 97],
      });
      for (const u of a.json.usage) expect(u.resetSeconds).toBeGreaterThan(0);
      // a minute (plus one 3 s bucket) later the minute windows are empty again, the longer ones still count
      clock.advance(63_000);
      expect(usageMap((await tokenInfo(gw.url, token, clientA)).json.usage)).toEqual({
        'client/minute': [5, 0, 5],
        'client/hour': [10, 3, 7],
        'global/minute': [8, 0, 8],
        'global/day': [100, 3, 97],
      });
    });

    it('needs the token as bearer: 401 MISSING_API_KEY without, INVALID_API_KEY for garbage', async () => {
      expectError(await getJson(`${gw.url}/api/v1/oauth/tokeninfo`), 401, 'MISSING_API_KEY');
      expectError(await tokenInfo(gw.url, 'aisbreaker_garbage'), 401, 'INVALID_API_KEY');
    });
  });

  describe('POST /api/v1/oauth/introspect (RFC 7662)', () => {
    it('is for operators only: 403 without or with a wrong admin key, even with a valid token as bearer', async () => {
      const token = await mintToken();
      expectError(await postForm(`${gw.url}/api/v1/oauth/introspect`, { token }), 403, 'FORBIDDEN');
      expectError(await postForm(`${gw.url}/api/v1/oauth/introspect`, { token }, { Authorization: 'Bearer wrong-admin-key-123456' }), 403, 'FORBIDDEN');
      expectError(await postForm(`${gw.url}/api/v1/oauth/introspect`, { token }, { Authorization: `Bearer ${token}` }), 403, 'FORBIDDEN');
    });

    it('describes an active token (form or JSON) with its global usage, without secrets', async () => {
      const token = await mintToken({
        requestAuthAndQuotas: { requestQuotas: QUOTAS, serviceSecrets: [{ serviceId: '', authSecret: UPSTREAM_SECRET }] },
        expirationTimeSpan: '1h',
      });
      await expectServes(gw.url, token);
      await expectServes(gw.url, token);
      const form = await postForm<Introspection>(`${gw.url}/api/v1/oauth/introspect`, { token }, ADMIN);
      expect(form.status, form.text).toBe(200);
      const info = form.json;
      expect(info.active).toBe(true);
      expect(info.token_type).toBe('Bearer');
      expect(info.sub).toBe('127.0.0.1#aisbreaker');
      expect(info.exp).toBe((info.iat ?? 0) + 3600);
      expect(info.services).toEqual(['']);
      expect(info.requestQuotas).toEqual(QUOTAS);
      expect(usageMap(info.usage ?? [])).toEqual({ 'global/minute': [8, 2, 6], 'global/day': [100, 2, 98] });
      expect(form.text).not.toContain(UPSTREAM_SECRET);
      const json = await postJson<Introspection>(`${gw.url}/api/v1/oauth/introspect`, { token }, ADMIN);
      expect(json.json.jti).toBe(info.jti);
      // introspection counts nothing
      expect(usageMap(json.json.usage ?? [])).toEqual({ 'global/minute': [8, 2, 6], 'global/day': [100, 2, 98] });
    });

    it('answers {active:false} for garbage, a tampered, a revoked and an expired token', async () => {
      const inactive = async (token: string): Promise<void> => {
        const res = await postForm<Introspection>(`${gw.url}/api/v1/oauth/introspect`, { token }, ADMIN);
        expect(res.status, res.text).toBe(200);
        expect(res.json.active).toBe(false);
        expect(res.json.services).toBeUndefined();
        expect(res.json.requestQuotas).toBeUndefined();
      };
      await inactive('aisbreaker_garbage');
      await inactive('something else');
      const token = await mintToken({ requestAuthAndQuotas: {}, expirationTimeSpan: '10m' });
      await inactive(tamperToken(token));
      const revoked = await mintToken();
      await postForm(`${gw.url}/api/v1/oauth/revoke`, { token: revoked });
      await inactive(revoked);
      expect((await postForm<Introspection>(`${gw.url}/api/v1/oauth/introspect`, { token }, ADMIN)).json.active).toBe(true);
      clock.advance(10 * 60 * 1000);
      await inactive(token);
    });

    it('400 naming token when there is none', async () => {
      expectInvalid(await postForm(`${gw.url}/api/v1/oauth/introspect`, {}, ADMIN), 'token');
    });
  });
});

describe('revocation across two gateway instances sharing a real Redis', () => {
  let redis: TestRedis;
  let client: Redis;
  let a: TestGateway;
  let b: TestGateway;
  beforeAll(async () => {
    redis = await TestRedis.start();
    client = redis.client();
    const env = { REDIS_URL: redis.url, AISBREAKER_ADMIN_KEY: ADMIN_KEY };
    [a, b] = await Promise.all([startGateway(env), startGateway(env)]);
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    client?.disconnect();
    await redis?.stop();
  });

  it('a token revoked by its holder on one instance is refused on the other within 1 s', async () => {
    const token = await mint(a.url, { requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { requestsPerDay: 100 } } } }, ADMIN);
    // both instances have seen (and cached) the token
    await expectServes(a.url, token);
    await expectServes(b.url, token);
    const revoked = await postForm<{ revoked: boolean }>(`${a.url}/api/v1/oauth/revoke`, { token });
    expect(revoked.json.revoked).toBe(true);
    const elapsed = await within(1000, async () => (await useToken(b.url, token)).status === 401);
    expect(elapsed).toBeLessThan(1000);
    expectError(await useToken(b.url, token), 401, 'REVOKED_API_KEY');
    expectError(await useToken(a.url, token), 401, 'REVOKED_API_KEY');
    expectError(await tokenInfo(b.url, token), 401, 'REVOKED_API_KEY');
  });

  // the deny cache answers a token over its limit from memory (no Redis call) until its window
  // admits again: the revocation reaches it by the instances' pub/sub feed
  it('a token already refused for its quota on the other instance is refused as revoked there within 1 s', async () => {
    const token = await mint(a.url, { requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { requestsPerHour: 1 } } } }, ADMIN);
    await expectServes(b.url, token);
    expectError(await useToken(b.url, token), 429, 'RATE_LIMITED');
    expect((await postForm<{ revoked: boolean }>(`${a.url}/api/v1/oauth/revoke`, { token })).json.revoked).toBe(true);
    expectError(await useToken(a.url, token), 401, 'REVOKED_API_KEY');
    await within(1000, async () => (await useToken(b.url, token)).status === 401);
  });

  it('an admin revocation by jti on one instance is refused on the other, also for an unlimited token', async () => {
    const token = await mint(b.url, { requestAuthAndQuotas: {} }, ADMIN);
    await expectServes(a.url, token);
    const { jti } = (await tokenInfo(a.url, token)).json;
    expect((await postForm<{ revoked: boolean }>(`${b.url}/api/v1/oauth/revoke`, { jti }, ADMIN)).json.revoked).toBe(true);
    await within(1000, async () => (await useToken(a.url, token)).status === 401);
    expectError(await useToken(a.url, token), 401, 'REVOKED_API_KEY');
    const introspected = await postForm<Introspection>(`${a.url}/api/v1/oauth/introspect`, { token }, ADMIN);
    expect(introspected.json.active).toBe(false);
  });

  it('stores only the revoked jti, expiring with its token', async () => {
    const token = await mint(a.url, { requestAuthAndQuotas: {}, expirationTimeSpan: '2h' }, ADMIN);
    const { jti } = (await tokenInfo(a.url, token)).json;
    await postForm(`${b.url}/api/v1/oauth/revoke`, { token });
    const keys = await client.keys(`*${jti}*revoked*`);
    expect(keys).toHaveLength(1);
    const key = keys[0] ?? '';
    expect(key).not.toContain(token.slice(11, 40));
    const ttlMs = await client.pttl(key);
    expect(ttlMs).toBeGreaterThan(2 * 3600 * 1000 - 60_000);
    expect(ttlMs).toBeLessThanOrEqual(2 * 3600 * 1000);
    // nothing about live tokens is stored apart from their counters: no key holds a token or a secret
    const all = await client.keys('*');
    for (const k of all) expect(k).not.toContain('aisbreaker_');
  });

  it('checks revocation in the same single Redis round trip as the quota (no extra command per request)', async () => {
    const token = await mint(a.url, { requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { requestsPerDay: 1000 } } } }, ADMIN);
    await expectServes(a.url, token); // warm up: script loaded, token cached
    await client.config('RESETSTAT');
    for (let i = 0; i < 10; i++) await expectServes(a.url, token);
    const stats = await client.info('commandstats');
    const calls = [...stats.matchAll(/^cmdstat_([a-z|_]+):calls=(\d+)/gm)]
      .filter((m) => !m[1]?.startsWith('info') && !m[1]?.startsWith('config'))
      .map((m) => [m[1] ?? '', Number(m[2])] as const);
    const total = calls.reduce((sum, [, n]) => sum + n, 0);
    // each request: one EVALSHA (the script's own EXISTS/HMGET/... run inside it are not network round trips)
    const scripted = calls.filter(([name]) => name === 'evalsha' || name === 'eval').reduce((sum, [, n]) => sum + n, 0);
    expect(scripted).toBe(10);
    // (get, zrangebyscore: each instance's look at the revocation ledger's version every 5 s, and
    // its reload when that changed; not a request's)
    const roundTrips = calls.filter(([name]) => !['exists', 'hmget', 'hset', 'hgetall', 'hdel', 'del', 'pexpire', 'pexpireat', 'expire', 'hincrby', 'get', 'zrangebyscore'].includes(name));
    expect(roundTrips.reduce((sum, [, n]) => sum + n, 0), JSON.stringify(calls)).toBe(10);
    expect(total).toBeGreaterThanOrEqual(10);
  });
});
