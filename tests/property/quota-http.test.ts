import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mint, postProcess, processBody, startGateway, type TestGateway } from '../helpers/gateway.js';
import { TestRedis } from '../helpers/redis-server.js';

/**
 * Property, over HTTP: for a random limit and random bursts of concurrent requests, a token is
 * admitted exactly min(limit, requests) times within its window, with memory and with Redis
 * quotas; every other request is 429 RATE_LIMITED naming the window and limit that refused it.
 * (tests/quota/stores.test.ts proves the no-overshoot property of the stores themselves.)
 */

const scenario = fc.record({
  scope: fc.constantFrom('perClientRequestLimits' as const, 'globalRequestLimits' as const),
  window: fc.constantFrom('requestsPerMinute' as const, 'requestsPerHour' as const, 'requestsPerDay' as const),
  limit: fc.integer({ min: 1, max: 8 }),
  bursts: fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 3 }),
});

describe.each(['memory', 'redis'] as const)('property: %s quotas admit exactly the limit under concurrent bursts', (store) => {
  let redis: TestRedis | undefined;
  let gw: TestGateway;
  beforeAll(async () => {
    if (store === 'redis') redis = await TestRedis.start();
    gw = await startGateway(redis ? { REDIS_URL: redis.url } : {});
  });
  afterAll(async () => {
    await gw.close();
    await redis?.stop();
  });

  it('admitted == min(limit, sent); the rest 429 with the window named (15 scenarios)', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async ({ scope, window, limit, bursts }) => {
        const token = await mint(gw.url, { requestAuthAndQuotas: { requestQuotas: { [scope]: { [window]: limit } } } });
        const statuses: number[] = [];
        const refusals: { code: string; details: { window: string; limit: number; scope: string } }[] = [];
        for (const size of bursts) {
          const results = await Promise.all(Array.from({ length: size }, () => postProcess(gw.url, token, processBody('chat:dummy', 'q'))));
          for (const res of results) {
            statuses.push(res.status);
            if (res.status === 429) refusals.push(((await res.json()) as { error: (typeof refusals)[number] }).error);
            else await res.arrayBuffer();
          }
        }
        const sent = bursts.reduce((a, b) => a + b, 0);
        expect(statuses.filter((s) => s === 200).length).toBe(Math.min(limit, sent));
        expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
        const expectedWindow = { requestsPerMinute: 'minute', requestsPerHour: 'hour', requestsPerDay: 'day' }[window];
        for (const r of refusals) {
          expect(r.code).toBe('RATE_LIMITED');
          expect(r.details).toMatchObject({ window: expectedWindow, limit, scope: scope === 'globalRequestLimits' ? 'global' : 'client' });
        }
      }),
      { numRuns: 15 },
    );
  });
});
