import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { MemoryQuotaStore } from '../../src/quota/memory-store.js';
import { planForToken, type QuotaPlan } from '../../src/quota/plan.js';
import { RedisQuotaStore } from '../../src/quota/redis-store.js';
import { tightestOf, type QuotaStore } from '../../src/quota/store.js';
import { WINDOW_MS } from '../../src/quota/windows.js';
import type { RequestLimits } from '../../src/token/claims.js';
import { TestRedis } from '../helpers/redis-server.js';

const T0 = Date.UTC(2030, 0, 1, 12, 0, 0);

function plan(limits: { client?: RequestLimits; global?: RequestLimits }, client = '1.1.1.1', jti = randomBytes(16).toString('base64url')): QuotaPlan {
  return planForToken({ jti, exp: T0 / 1000 + 7 * 86400, requestQuotas: { perClientRequestLimits: limits.client, globalRequestLimits: limits.global } }, client);
}

let redisServer: TestRedis;
let redis: Redis;
beforeAll(async () => {
  redisServer = await TestRedis.start();
  redis = redisServer.client();
});
afterAll(async () => {
  redis.disconnect();
  await redisServer.stop();
});

const stores: [string, () => QuotaStore][] = [
  ['memory', () => new MemoryQuotaStore()],
  ['redis', () => new RedisQuotaStore(redis)],
];

describe.each(stores)('%s quota store', (_name, makeStore) => {
  it('admits exactly the limit per window, then denies with the window named', async () => {
    const store = makeStore();
    const p = plan({ client: { requestsPerMinute: 3 } });
    const outcomes = [];
    for (let i = 0; i < 5; i++) outcomes.push(await store.consume(p, T0 + i));
    expect(outcomes.map((o) => o.outcome)).toEqual(['admitted', 'admitted', 'admitted', 'denied', 'denied']);
    const denied = outcomes[3];
    expect(denied?.outcome === 'denied' && denied.counter).toMatchObject({ scope: 'client', window: 'minute', limit: 3 });
  });

  it('reports remaining and reset for the tightest window', async () => {
    const store = makeStore();
    const p = plan({ client: { requestsPerMinute: 10, requestsPerHour: 2 } });
    const first = await store.consume(p, T0);
    expect(first.outcome).toBe('admitted');
    if (first.outcome !== 'admitted') return;
    const tightest = tightestOf(first.statuses);
    expect(tightest?.counter.window).toBe('hour');
    expect(tightest?.remaining).toBe(1);
    // the bucket of T0 leaves the hour window one hour plus at most one bucket (3 min) later
    expect(tightest?.resetMs).toBeGreaterThan(WINDOW_MS.hour);
    expect(tightest?.resetMs).toBeLessThanOrEqual(WINDOW_MS.hour + WINDOW_MS.hour / 20);
  });

  it('a denied request consumes nothing in any window', async () => {
    const store = makeStore();
    const jti = randomBytes(16).toString('base64url');
    const tight = plan({ client: { requestsPerMinute: 1 }, global: { requestsPerMinute: 5 } }, '1.1.1.1', jti);
    expect((await store.consume(tight, T0)).outcome).toBe('admitted');
    for (let i = 0; i < 10; i++) expect((await store.consume(tight, T0 + 1)).outcome).toBe('denied');
    // another client of the same token still has the 4 global requests left, no more
    const other = plan({ client: { requestsPerMinute: 100 }, global: { requestsPerMinute: 5 } }, '2.2.2.2', jti);
    const results = [];
    for (let i = 0; i < 6; i++) results.push((await store.consume(other, T0 + 2)).outcome);
    expect(results).toEqual(['admitted', 'admitted', 'admitted', 'admitted', 'denied', 'denied']);
  });

  it('two tokens with equal limits do not share counters', async () => {
    const store = makeStore();
    const a = plan({ global: { requestsPerMinute: 1 } });
    const b = plan({ global: { requestsPerMinute: 1 } });
    expect((await store.consume(a, T0)).outcome).toBe('admitted');
    expect((await store.consume(b, T0)).outcome).toBe('admitted');
    expect((await store.consume(a, T0)).outcome).toBe('denied');
  });

  it('a burst straddling the minute boundary does not get 2N through', async () => {
    const store = makeStore();
    const p = plan({ global: { requestsPerMinute: 10 } });
    const boundary = Math.ceil(T0 / 60_000) * 60_000;
    let admitted = 0;
    for (let i = 0; i < 10; i++) if ((await store.consume(p, boundary - 500 + i)).outcome === 'admitted') admitted++;
    for (let i = 0; i < 10; i++) if ((await store.consume(p, boundary + 500 + i)).outcome === 'admitted') admitted++;
    expect(admitted).toBe(10);
  });

  it('Retry-After is exact: denied 1 ms before it, admitted at it', async () => {
    const store = makeStore();
    const p = plan({ client: { requestsPerMinute: 2 } });
    await store.consume(p, T0);
    await store.consume(p, T0 + 10_000);
    const denied = await store.consume(p, T0 + 20_000);
    expect(denied.outcome).toBe('denied');
    if (denied.outcome !== 'denied') return;
    const at = T0 + 20_000 + denied.retryAfterMs;
    // the first request's bucket leaves within [60 s, 63 s] after it
    expect(at - T0).toBeGreaterThanOrEqual(60_000);
    expect(at - T0).toBeLessThanOrEqual(63_000);
    expect((await store.consume(p, at - 1)).outcome).toBe('denied');
    expect((await store.consume(p, at)).outcome).toBe('admitted');
  });

  it('every window and scope counts on its own (hour and day too)', async () => {
    const store = makeStore();
    const p = plan({ client: { requestsPerHour: 2, requestsPerDay: 3 } });
    expect((await store.consume(p, T0)).outcome).toBe('admitted');
    expect((await store.consume(p, T0 + 1)).outcome).toBe('admitted');
    const hourDenied = await store.consume(p, T0 + 2);
    expect(hourDenied.outcome === 'denied' && hourDenied.counter.window).toBe('hour');
    expect((await store.consume(p, T0 + WINDOW_MS.hour * 1.1)).outcome).toBe('admitted');
    const dayDenied = await store.consume(p, T0 + WINDOW_MS.hour * 1.2);
    expect(dayDenied.outcome === 'denied' && dayDenied.counter.window).toBe('day');
    expect((await store.consume(p, T0 + WINDOW_MS.day * 1.1)).outcome).toBe('admitted');
  });

  it('property: no interval of one window ever holds more than the limit', async () => {
    const store = makeStore();
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.integer({ min: 0, max: 5_000 }), { minLength: 1, maxLength: 60 }),
        async (limit, gaps) => {
          const p = plan({ global: { requestsPerMinute: limit } });
          const admittedAt: number[] = [];
          let t = T0;
          for (const gap of gaps) {
            t += gap;
            if ((await store.consume(p, t)).outcome === 'admitted') admittedAt.push(t);
          }
          for (const end of admittedAt) {
            const inWindow = admittedAt.filter((s) => s > end - WINDOW_MS.minute && s <= end).length;
            expect(inWindow).toBeLessThanOrEqual(limit);
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it('revoked tokens are reported as revoked until they expire', async () => {
    const store = makeStore();
    const p = plan({});
    expect((await store.consume(p, T0)).outcome).toBe('admitted');
    await store.revoke(p.revocationKeys[0] ?? '', T0 + 60_000, T0);
    expect((await store.consume(p, T0)).outcome).toBe('revoked');
  });
});

describe('redis quota keys', () => {
  it('share one hash tag per token and expire', async () => {
    const store = new RedisQuotaStore(redis);
    const jti = randomBytes(16).toString('base64url');
    const p = plan({ client: { requestsPerMinute: 5, requestsPerDay: 5 }, global: { requestsPerHour: 5 } }, '1.1.1.1', jti);
    await store.consume(p, Date.now());
    const keys = await redis.keys(`aisbgw:{${jti}}:*`);
    expect(keys).toHaveLength(3);
    for (const key of keys) {
      const ttl = await redis.pttl(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(WINDOW_MS.day * 1.05 + 1000);
    }
  });
});

describe.each(stores)('%s quota store, looking only', (_name, makeStore) => {
  it('reports usage per counter without counting', async () => {
    const store = makeStore();
    const p = plan({ client: { requestsPerMinute: 3 }, global: { requestsPerDay: 10 } });
    await store.consume(p, T0);
    for (let i = 0; i < 5; i++) {
      const look = await store.consume(p, T0 + 1, 'look');
      expect(look.outcome).toBe('admitted');
      if (look.outcome !== 'admitted') return;
      expect(look.statuses.map((s) => [s.counter.window, s.remaining])).toEqual([
        ['minute', 2],
        ['day', 9],
      ]);
    }
  });

  it('a derived token spends its ancestors\' global quotas and is revoked with them', async () => {
    const store = makeStore();
    const root = randomBytes(16).toString('base64url');
    const child = { jti: `${root}.${randomBytes(16).toString('base64url')}`, exp: T0 / 1000 + 3600, requestQuotas: {}, ancestors: [{ jti: root, globalRequestLimits: { requestsPerMinute: 2 } }] };
    const parentPlan = planForToken({ jti: root, exp: T0 / 1000 + 3600, requestQuotas: { globalRequestLimits: { requestsPerMinute: 2 } } }, '1.1.1.1');
    expect((await store.consume(planForToken(child, '9.9.9.9'), T0)).outcome).toBe('admitted');
    expect((await store.consume(parentPlan, T0)).outcome).toBe('admitted');
    expect((await store.consume(planForToken(child, '9.9.9.9'), T0)).outcome).toBe('denied');
    await store.revoke(parentPlan.revocationKeys[0] ?? '', T0 + 3_600_000, T0);
    expect((await store.consume(planForToken(child, '9.9.9.9'), T0 + 3_600_000 - 120_000, 'look')).outcome).toBe('revoked');
  });
});

describe.each(stores)('%s quota store, LLM-token limits', (_name, makeStore) => {
  it('admits while the window is not used up, counts tokens when settled, and lets the crossing request complete', async () => {
    const store = makeStore();
    const p = plan({ global: { tokensPerMinute: 100, requestsPerMinute: 50 } });
    expect((await store.consume(p, T0)).outcome).toBe('admitted');
    await store.settle(p, T0 + 10, 60);
    // 60 of 100 used: the next request is admitted, and its 70 tokens cross the limit
    const second = await store.consume(p, T0 + 20);
    expect(second.outcome).toBe('admitted');
    if (second.outcome === 'admitted') {
      const tokens = second.statuses.find((s) => s.counter.unit === 'tokens');
      expect(tokens?.remaining).toBe(40);
    }
    await store.settle(p, T0 + 30, 70);
    const third = await store.consume(p, T0 + 40);
    expect(third.outcome).toBe('denied');
    if (third.outcome !== 'denied') return;
    expect(third.counter).toMatchObject({ unit: 'tokens', window: 'minute', limit: 100 });
    // both settlements sit in the bucket of T0: the window admits again once that bucket has left
    const at = T0 + 40 + third.retryAfterMs;
    expect(at - T0).toBeGreaterThanOrEqual(60_000);
    expect((await store.consume(p, at - 1)).outcome).toBe('denied');
    expect((await store.consume(p, at)).outcome).toBe('admitted');
  });

  it('a request denied by its token window counts no request either', async () => {
    const store = makeStore();
    const p = plan({ client: { tokensPerHour: 10, requestsPerHour: 3 } });
    expect((await store.consume(p, T0)).outcome).toBe('admitted');
    await store.settle(p, T0 + 1, 10);
    for (let i = 0; i < 5; i++) expect((await store.consume(p, T0 + 2)).outcome).toBe('denied');
    const look = await store.consume(p, T0 + 3, 'look');
    expect(look.outcome === 'admitted' && look.statuses.map((s) => [s.counter.unit, s.remaining])).toEqual([
      ['requests', 2],
      ['tokens', 0],
    ]);
  });
});
