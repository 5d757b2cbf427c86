import { afterEach, describe, expect, it } from 'vitest';
import { mint, startGateway, type TestGateway } from '../helpers/gateway.js';
import { expectError, expectServes, getJson, postForm, useToken, within } from '../helpers/lifecycle-helpers.js';
import { TestRedis } from '../helpers/redis-server.js';
import { revocationKey } from '../../src/quota/plan.js';

/**
 * Revocations while Redis is away: under QUOTA_BACKEND_FAILURE=memory an instance serves from its
 * own memory, so what it knows of revocations (announced, or loaded from the ledger when it
 * connected) is all that can refuse a revoked token.
 */
describe('revocations and Redis outages', () => {
  const started: { close(): Promise<void> }[] = [];
  const start = async (redis: TestRedis): Promise<TestGateway> => {
    const gw = await startGateway({ REDIS_URL: redis.url, QUOTA_BACKEND_FAILURE: 'memory', REDIS_COMMAND_TIMEOUT_MS: '300' });
    started.push(gw);
    return gw;
  };
  afterEach(async () => {
    for (const s of started.splice(0).reverse()) await s.close();
  });

  it('an instance started after a revocation still refuses the token once Redis is down', async () => {
    const redis = await TestRedis.start();
    started.push({ close: () => redis.stop() });
    const a = await start(redis);
    const token = await mint(a.url, { requestAuthAndQuotas: {} });
    await expectServes(a.url, token);
    expect((await postForm<{ revoked: boolean }>(`${a.url}/api/v1/oauth/revoke`, { token })).json.revoked).toBe(true);

    // b never saw the announcement nor asked Redis about the token: it knows only the ledger it
    // loaded as it connected
    const b = await start(redis);
    await new Promise((r) => setTimeout(r, 300));
    await redis.kill();
    // Redis gone: b answers from memory, and still refuses the revoked token while serving others
    const other = await mint(a.url, { requestAuthAndQuotas: {} });
    await within(5000, async () => (await useToken(b.url, other)).status === 200);
    expectError(await useToken(b.url, token), 401, 'REVOKED_API_KEY');
    expectError(await useToken(a.url, token), 401, 'REVOKED_API_KEY');
  });

  it('an instance that started while Redis was down hears of revocations once it is back', async () => {
    const redis = await TestRedis.start();
    started.push({ close: () => redis.stop() });
    await redis.kill();
    const b = await start(redis);
    await redis.restart();
    const a = await start(redis);
    const token = await mint(a.url, { requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { requestsPerHour: 1 } } } });
    // b counts on Redis again (the first request on its fallback memory would not count there)...
    await within(5000, async () => ((await (await fetch(`${b.url}/readyz`)).json()) as { quotaStore: string }).quotaStore === 'redis');
    expect((await useToken(b.url, token)).status).toBe(200);
    // ...and refuses the token from memory for its quota, with no Redis call...
    expectError(await useToken(b.url, token), 429, 'RATE_LIMITED');
    // ...and turns that into a revocation within the second of a's revoke
    expect((await postForm<{ revoked: boolean }>(`${a.url}/api/v1/oauth/revoke`, { token })).json.revoked).toBe(true);
    await within(1000, async () => (await useToken(b.url, token)).status === 401);
  });

  it('a revocation whose announcement was lost still reaches an instance: the ledger is read again once its version changed', async () => {
    const redis = await TestRedis.start();
    started.push({ close: () => redis.stop() });
    const b = await start(redis);
    const token = await mint(b.url, { requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { requestsPerHour: 1 } } } });
    const { jti, exp } = (await getJson<{ jti: string; exp: number }>(`${b.url}/api/v1/oauth/tokeninfo`, { Authorization: `Bearer ${token}` })).json;
    expect((await useToken(b.url, token)).status).toBe(200);
    expectError(await useToken(b.url, token), 429, 'RATE_LIMITED'); // from now on refused from memory
    // revoked the way an instance does it, but with the pub/sub message lost (as when a cluster's
    // subscriber is moving to another node): only the ledger tells
    const client = redis.client();
    try {
      await client.set(revocationKey(jti), '1', 'PXAT', exp * 1000);
      await client.zadd('aisbgw:revocations:ledger', exp * 1000, revocationKey(jti));
      const version = await client.incr('aisbgw:revocations:ledger:version');
      await client.zadd('aisbgw:revocations:ledger:by-version', version, revocationKey(jti));
    } finally {
      client.disconnect();
    }
    const waited = await within(8000, async () => (await useToken(b.url, token)).status === 401);
    expect(waited).toBeLessThan(8000);
    expectError(await useToken(b.url, token), 401, 'REVOKED_API_KEY');
  });
});
