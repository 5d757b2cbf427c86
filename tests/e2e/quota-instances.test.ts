import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayProcess } from '../helpers/gateway-process.js';
import { call, metric, mintLimited, statusOf, tally } from '../helpers/quota-helpers.js';
import { TestRedis } from '../helpers/redis-server.js';

/**
 * Exactness across instances: separate gateway processes (the built dist/main.js, as deployed)
 * sharing one redis-server. Many concurrent requests spread over them against a limit of N per
 * minute: exactly N are admitted, never N + 1. Real clocks here; every burst lasts a few seconds,
 * far inside the minute, so the minute window holds all of it.
 */

const DIST_MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

let redis: TestRedis;
let inspector: Redis;
const instances: GatewayProcess[] = [];

beforeAll(async () => {
  if (!existsSync(DIST_MAIN)) throw new Error('dist/main.js is missing: run `npm run build` first');
  redis = await TestRedis.start();
  inspector = redis.client();
  // The default REDIS_COMMAND_TIMEOUT_MS (1 s) on purpose: a burst like these stalls each
  // process's event loop on two busy cores, and that lag must not pass for a Redis outage (the
  // fallback would then admit past the shared limit). Each test checks that no instance fell back.
  const env = { REDIS_URL: redis.url, TRUST_PROXY: 'loopback' };
  const started = await Promise.allSettled([GatewayProcess.start(env), GatewayProcess.start(env), GatewayProcess.start(env)]);
  // the ones that did start are stopped in afterAll even when another did not
  for (const result of started) if (result.status === 'fulfilled') instances.push(result.value);
  for (const result of started) if (result.status === 'rejected') throw result.reason;
}, 60_000);

afterAll(async () => {
  await Promise.all(instances.map((gw) => gw.stop()));
  inspector?.disconnect();
  await redis?.stop();
});

/** `count` requests at once, request i to instance i mod 3 (and client clientOf(i), if given). */
async function burst(token: string, count: number, clientOf?: (i: number) => string): Promise<{ instance: number; client: string; status: number }[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const instance = i % instances.length;
      const client = clientOf?.(i) ?? '9.9.9.9';
      const status = await statusOf(await call((instances[instance] as GatewayProcess).url, token, client));
      return { instance, client, status };
    }),
  );
}

/** Every instance decided with Redis only: none logged a fallback to its local limiter. */
function expectNoFallback(): void {
  for (const gw of instances) expect(gw.output.filter((line) => line.includes('quota store unavailable'))).toEqual([]);
}

async function scriptCalls(): Promise<number> {
  const stats = await inspector.info('commandstats');
  let calls = 0;
  for (const match of stats.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)) calls += Number(match[1]);
  return calls;
}

describe('quotas across three gateway processes sharing one Redis', () => {
  it('200 concurrent requests spread over the instances against a global limit of 25/minute: exactly 25 admitted', async () => {
    const gw0 = instances[0] as GatewayProcess;
    const token = await mintLimited(gw0.url, { global: { requestsPerMinute: 25 } });
    const results = await burst(token, 200, (i) => `10.0.${i % 7}.1`);
    expectNoFallback();
    expect(tally(results.map((r) => r.status))).toEqual({ 200: 25, 429: 175 });
    // every instance took part in the race (which one wins the admissions is up to the scheduler:
    // on a busy machine one instance may take all 25)
    for (let instance = 0; instance < instances.length; instance++) {
      expect(results.filter((r) => r.instance === instance).length).toBeGreaterThan(60);
    }
    // and the limit keeps holding afterwards on every instance
    for (const gw of instances) expect(await statusOf(await call(gw.url, token, '10.1.1.1'))).toBe(429);
  });

  it('per-client limits hold across instances too: 4 clients x 60 requests, limit 10 per client, exactly 10 each', async () => {
    const gw1 = instances[1] as GatewayProcess;
    const token = await mintLimited(gw1.url, { client: { requestsPerMinute: 10 }, global: { requestsPerHour: 1000 } });
    const clients = ['1.1.1.1', '2.2.2.2', '3.3.3.3', '4.4.4.4'];
    const results = await burst(token, 240, (i) => clients[Math.floor(i / 3) % 4] as string);
    expectNoFallback();
    for (const client of clients) {
      const mine = results.filter((r) => r.client === client);
      expect(mine.length).toBe(60);
      expect(tally(mine.map((r) => r.status)), client).toEqual({ 200: 10, 429: 50 });
    }
  });

  it('quota decisions show up in each instance /metrics and add up to the traffic', async () => {
    const labels = { outcome: 'admitted', scope: '', window: '' };
    const deniedLabels = { outcome: 'denied', scope: 'global', window: 'minute' };
    const before = await Promise.all(instances.map(async (gw) => [await metric(gw.url, 'aisbgw_quota_decisions_total', labels), await metric(gw.url, 'aisbgw_quota_decisions_total', deniedLabels)]));
    const token = await mintLimited((instances[2] as GatewayProcess).url, { global: { requestsPerMinute: 12 } });
    const results = await burst(token, 60);
    expectNoFallback();
    expect(tally(results.map((r) => r.status))).toEqual({ 200: 12, 429: 48 });
    const after = await Promise.all(instances.map(async (gw) => [await metric(gw.url, 'aisbgw_quota_decisions_total', labels), await metric(gw.url, 'aisbgw_quota_decisions_total', deniedLabels)]));
    const admitted = after.reduce((sum, [a], i) => sum + (a ?? 0) - (before[i]?.[0] ?? 0), 0);
    const denied = after.reduce((sum, [, d], i) => sum + (d ?? 0) - (before[i]?.[1] ?? 0), 0);
    expect({ admitted, denied }).toEqual({ admitted: 12, denied: 48 });
  });

  it('one script call per request whatever the number of windows, and none for a token already over its limit', async () => {
    const gw = instances[0] as GatewayProcess;
    const token = await mintLimited(gw.url, {
      client: { requestsPerMinute: 3, requestsPerHour: 50, requestsPerDay: 100 },
      global: { requestsPerMinute: 50, requestsPerHour: 100, requestsPerDay: 200 },
    });
    const before = await scriptCalls();
    for (let i = 0; i < 3; i++) expect(await statusOf(await call(gw.url, token, '5.5.5.5'))).toBe(200);
    expect(await scriptCalls()).toBe(before + 3);
    // the first refusal asks Redis; the next ones inside the window are answered from memory
    const denyStart = await scriptCalls();
    for (let i = 0; i < 30; i++) expect(await statusOf(await call(gw.url, token, '5.5.5.5'))).toBe(429);
    expect(await scriptCalls()).toBe(denyStart + 1);
  });

  it('keys share one hash tag per token and all carry an expiry no longer than their window plus one bucket', async () => {
    const gw = instances[1] as GatewayProcess;
    const token = await mintLimited(gw.url, { client: { requestsPerMinute: 5, requestsPerDay: 9 }, global: { requestsPerHour: 9 } });
    expect(await statusOf(await call(gw.url, token, '6.6.6.6'))).toBe(200);
    const keys = await inspector.keys('aisbgw:*');
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) {
      expect(key, key).toMatch(/^aisbgw:\{[^}]+\}:/);
      const ttl = await inspector.pttl(key);
      expect(ttl, `${key} expires`).toBeGreaterThan(0);
      const window = key.endsWith(':minute') ? 60_000 : key.endsWith(':hour') ? 3_600_000 : key.endsWith(':day') ? 86_400_000 : undefined;
      if (window !== undefined) expect(ttl, key).toBeLessThanOrEqual(window * 1.05);
    }
    // the three counters of this token (its client's minute and day, the global hour): one hash tag
    const clientKeys = keys.filter((k) => k.includes(':c:6.6.6.6:'));
    expect(clientKeys.length).toBe(2);
    const tags = new Set(clientKeys.map((k) => /\{([^}]+)\}/.exec(k)?.[1]));
    expect(tags.size).toBe(1);
    const tokenKeys = keys.filter((k) => k.startsWith(`aisbgw:{${[...tags][0] ?? ''}}:`));
    expect(tokenKeys.map((k) => k.split(':').slice(-2).join(':')).sort()).toEqual(['6.6.6.6:day', '6.6.6.6:minute', 'g:hour']);
  });
});

describe('the memory store in one process', () => {
  let gw: GatewayProcess;
  beforeAll(async () => {
    gw = await GatewayProcess.start({});
  });
  afterAll(() => gw.stop());

  it('200 concurrent requests against a limit of 25/minute: exactly 25 admitted', async () => {
    const token = await mintLimited(gw.url, { global: { requestsPerMinute: 25 } });
    const statuses = await Promise.all(Array.from({ length: 200 }, async () => statusOf(await call(gw.url, token))));
    expect(tally(statuses)).toEqual({ 200: 25, 429: 175 });
  });
});
