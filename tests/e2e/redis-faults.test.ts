import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../helpers/clock.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { call, errorOf, eventually, expectRateLimited, metric, mintLimited, statusOf, statuses, tally } from '../helpers/quota-helpers.js';
import { TestRedis } from '../helpers/redis-server.js';

/**
 * Redis failures under QUOTA_BACKEND_FAILURE: killed mid-traffic, down at start, hung (SIGSTOP),
 * and back again, with the gateway never restarted. `memory` keeps serving with per-instance
 * limits; `reject` answers 503 QUOTA_BACKEND_UNAVAILABLE. No request may hang: each is bounded by
 * REDIS_COMMAND_TIMEOUT_MS (plus a generous margin for a busy machine).
 */

const TIMEOUT_MS = 400;
/** how long any one request may take while Redis is failing: the command timeout plus a wide margin */
const BOUND_MS = TIMEOUT_MS + 2600;

let redis: TestRedis;
let gw: TestGateway | undefined;
beforeAll(async () => {
  redis = await TestRedis.start();
});
afterAll(async () => {
  await redis.stop();
});
afterEach(async () => {
  redis.resume();
  await gw?.close();
  gw = undefined;
  // every test leaves a Redis that runs, for the next one
  await redis.restart();
});

async function start(policy: 'memory' | 'reject'): Promise<TestGateway> {
  gw = await startGateway({ REDIS_URL: redis.url, QUOTA_BACKEND_FAILURE: policy, REDIS_COMMAND_TIMEOUT_MS: String(TIMEOUT_MS) }, { clock: new ManualClock().read });
  return gw;
}

/** A request with its duration; aborted (and so failing the test) if it takes far too long. */
async function timed(url: string, token: string, client?: string): Promise<{ status: number; ms: number; res: Response }> {
  const started = performance.now();
  const res = await fetch(`${url}/api/v1/process`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}`, ...(client ? { 'X-Forwarded-For': client } : {}) },
    body: JSON.stringify({ service: { serviceId: 'chat:dummy' }, request: { inputs: [{ text: { role: 'user', content: 'hi' } }] } }),
    signal: AbortSignal.timeout(15_000),
  });
  return { status: res.status, ms: performance.now() - started, res };
}

async function readyz(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${url}/readyz`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function outageLines(logs: string[]): string[] {
  return logs.filter((line) => line.includes('quota store unavailable'));
}

/** Redis decides again: a fresh token's counter appears in Redis. */
async function decidedByRedis(url: string): Promise<boolean> {
  const token = await mintLimited(url, { global: { requestsPerMinute: 1 } });
  const client = redis.client();
  try {
    const before = (await client.keys('aisbgw:*')).length;
    if ((await statusOf(await call(url, token))) !== 200) return false;
    return (await client.keys('aisbgw:*')).length > before;
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

describe('QUOTA_BACKEND_FAILURE=memory', () => {
  it('Redis killed mid-traffic: every request is answered, limits hold per instance, readyz and metrics tell, one log line per outage; recovery without restart', async () => {
    const { url, logs } = await start('memory');
    const token = await mintLimited(url, { global: { requestsPerMinute: 5 } });
    const busy = await mintLimited(url, {});
    expect(await statuses(2, () => call(url, token))).toEqual([200, 200]);
    expect(await metric(url, 'aisbgw_quota_store_degraded')).toBe(0);

    // steady traffic from one client while Redis dies under it
    let stop = false;
    const traffic: { status: number; ms: number }[] = [];
    const loop = (async () => {
      while (!stop) {
        const { status, ms, res } = await timed(url, busy);
        await res.arrayBuffer();
        traffic.push({ status, ms });
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 150));
    await redis.kill();
    await new Promise((resolve) => setTimeout(resolve, 600));
    stop = true;
    await loop;
    expect(traffic.length).toBeGreaterThan(3);
    expect(tally(traffic.map((t) => t.status))).toEqual({ 200: traffic.length });
    expect(Math.max(...traffic.map((t) => t.ms))).toBeLessThan(BOUND_MS);

    // the fallback limits this instance from zero: 5 more, then 429 naming the same window
    expect(await statuses(5, () => call(url, token))).toEqual([200, 200, 200, 200, 200]);
    await expectRateLimited(await call(url, token), { scope: 'global', window: 'minute', limit: 5 });

    const ready = await readyz(url);
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ status: 'ready', quotaStore: 'fallback' });
    expect(await metric(url, 'aisbgw_quota_store_degraded')).toBe(1);
    expect(await metric(url, 'aisbgw_quota_store_errors_total')).toBeGreaterThan(0);
    expect(outageLines(logs)).toHaveLength(1);
    expect(outageLines(logs)[0]).toContain('"policy":"memory"');
    // the cause, not ioredis' queue state
    expect(outageLines(logs)[0]).toMatch(new RegExp(`"reason":"Redis is unreachable: (connect ECONNREFUSED 127\\.0\\.0\\.1:${redis.port}|read ECONNRESET|the connection was closed)"`));

    await redis.restart();
    await eventually(() => decidedByRedis(url), 10_000, 'Redis deciding again');
    expect(await metric(url, 'aisbgw_quota_store_degraded')).toBe(0);
    expect(await readyz(url)).toMatchObject({ status: 200, body: { status: 'ready', quotaStore: 'redis' } });
    expect(logs.filter((line) => line.includes('quota store recovered'))).toHaveLength(1);
    // a second outage is logged once more
    await redis.kill();
    expect(await statusOf(await call(url, busy))).toBe(200);
    expect(await statusOf(await call(url, busy))).toBe(200);
    expect(outageLines(logs)).toHaveLength(2);
  });

  it('an instance without traffic logs the outage when the connection is lost, naming the cause, and its end (info) when Redis is back', async () => {
    const { logs } = await start('memory');
    await redis.kill();
    await eventually(async () => outageLines(logs).length > 0, 5000, 'the outage logged');
    expect(outageLines(logs)).toHaveLength(1);
    expect(outageLines(logs)[0]).toMatch(new RegExp(`"reason":"Redis is unreachable: (connect ECONNREFUSED 127\\.0\\.0\\.1:${redis.port}|read ECONNRESET|the connection was closed)"`));
    expect(logs.join('\n')).not.toContain("Stream isn't writeable");
    await redis.restart();
    await eventually(async () => logs.some((line) => line.includes('quota store recovered')), 5000, 'the recovery logged');
    const recovered = JSON.parse(logs.find((line) => line.includes('quota store recovered')) ?? '{}') as { level?: number };
    expect(recovered.level).toBe(30);
  });

  it('a token already refused by Redis stays refused when Redis dies: the remembered denial outlasts the outage start', async () => {
    const { url } = await start('memory');
    const token = await mintLimited(url, { client: { requestsPerMinute: 2 } });
    expect(await statuses(2, () => call(url, token))).toEqual([200, 200]);
    await expectRateLimited(await call(url, token), { scope: 'client', window: 'minute', limit: 2 });
    await redis.kill();
    // not reopened by the fallback's fresh counters: the denial holds until its window admits
    const { retryAfter } = await expectRateLimited(await call(url, token), { scope: 'client', window: 'minute', limit: 2 });
    expect(retryAfter).toBe(63);
  });

  it('Redis down at start: serves from memory, then uses Redis once it is there', async () => {
    await redis.kill();
    const { url, logs } = await start('memory');
    const token = await mintLimited(url, { client: { requestsPerMinute: 2 } });
    expect(await statuses(3, () => call(url, token))).toEqual([200, 200, 429]);
    expect((await readyz(url)).status).toBe(200);
    // the cause as the operator can act on it
    expect(outageLines(logs)).toHaveLength(1);
    expect(outageLines(logs)[0]).toContain(`"reason":"Redis is unreachable: connect ECONNREFUSED 127.0.0.1:${redis.port}"`);
    await redis.restart();
    await eventually(() => decidedByRedis(url), 10_000, 'Redis deciding after a start without it');
  });

  it('a hung Redis (SIGSTOP): every request is answered within the command timeout bound, and it recovers on SIGCONT', async () => {
    const { url } = await start('memory');
    const token = await mintLimited(url, { global: { requestsPerMinute: 100 } });
    expect(await statusOf(await call(url, token))).toBe(200);
    redis.pause();
    const results = await Promise.all(Array.from({ length: 10 }, () => timed(url, token)));
    for (const r of results) await r.res.arrayBuffer();
    expect(results.map((r) => r.status)).toEqual(Array<number>(10).fill(200));
    expect(Math.max(...results.map((r) => r.ms))).toBeLessThan(BOUND_MS);
    expect(await metric(url, 'aisbgw_quota_store_degraded')).toBe(1);
    redis.resume();
    await eventually(() => decidedByRedis(url), 10_000, 'Redis deciding after SIGCONT');
    expect(await metric(url, 'aisbgw_quota_store_degraded')).toBe(0);
  });
});

describe('a busy gateway is not a Redis outage', () => {
  it('an event loop blocked past the command timeout while the reply is on its way: Redis still decides, nothing falls back', async () => {
    const clock = new ManualClock();
    let stallNext = false;
    // The quota guard reads the clock, then queues the quota script at once; ioredis sends it from a
    // setImmediate (auto-pipelining). A microtask runs after the queueing, so an immediate set from
    // there runs just after the send: it blocks the loop while Redis answers.
    const read = (): number => {
      if (stallNext && (new Error().stack ?? '').includes('quota/guard.ts')) {
        stallNext = false;
        queueMicrotask(() =>
          setImmediate(() => {
            const until = performance.now() + 3 * TIMEOUT_MS;
            while (performance.now() < until) {
              // a CPU-bound stretch, as a burst of requests on a busy core
            }
          }),
        );
      }
      return clock.now;
    };
    gw = await startGateway({ REDIS_URL: redis.url, QUOTA_BACKEND_FAILURE: 'memory', REDIS_COMMAND_TIMEOUT_MS: String(TIMEOUT_MS) }, { clock: read });
    const { url, logs } = gw;
    const token = await mintLimited(url, { global: { requestsPerMinute: 1 } });
    stallNext = true;
    expect(await statusOf(await call(url, token))).toBe(200);
    expect(stallNext).toBe(false);
    expect(outageLines(logs)).toEqual([]);
    expect(await metric(url, 'aisbgw_quota_store_errors_total')).toBe(0);
    // Redis counted it: the next request is refused (a fallback would have counted it in memory only)
    await expectRateLimited(await call(url, token), { scope: 'global', window: 'minute', limit: 1 });
  });
});

describe('QUOTA_BACKEND_FAILURE=reject', () => {
  it('Redis killed: 503 QUOTA_BACKEND_UNAVAILABLE with Retry-After, readyz 503; back without restart, readyz too', async () => {
    const { url, logs } = await start('reject');
    const token = await mintLimited(url, { global: { requestsPerMinute: 5 } });
    expect(await statuses(2, () => call(url, token))).toEqual([200, 200]);
    expect(await readyz(url)).toMatchObject({ status: 200, body: { status: 'ready', quotaStore: 'redis' } });

    await redis.kill();
    for (let i = 0; i < 3; i++) {
      const { status, ms, res } = await timed(url, token);
      expect(status).toBe(503);
      expect(ms).toBeLessThan(BOUND_MS);
      expect(res.headers.get('retry-after')).toBe('1');
      const error = await errorOf(res);
      expect(error.code).toBe('QUOTA_BACKEND_UNAVAILABLE');
      expect(error.type).toBe('api_error');
      expect(error.message).not.toContain('ECONNREFUSED');
    }
    expect(await readyz(url)).toMatchObject({ status: 503, body: { status: 'not ready', quotaStore: 'unavailable' } });
    expect(await metric(url, 'aisbgw_quota_store_degraded')).toBe(1);
    expect(outageLines(logs)).toHaveLength(1);
    expect(outageLines(logs)[0]).toContain('"policy":"reject"');

    // a load balancer sends no traffic to a not-ready instance: readyz must recover on its own
    await redis.restart();
    await eventually(async () => (await readyz(url)).status === 200, 10_000, 'readyz 200 after Redis is back, with no traffic');
    // the restarted test Redis keeps nothing on disk: the token starts afresh, and the 503s counted nowhere
    expect(await statuses(6, () => call(url, token))).toEqual([200, 200, 200, 200, 200, 429]);
  });

  it('Redis down at start: 503 and not ready, then serving once Redis is there', async () => {
    await redis.kill();
    const { url } = await start('reject');
    const token = await mintLimited(url, { global: { requestsPerMinute: 5 } });
    const refused = await call(url, token);
    expect(refused.status).toBe(503);
    expect((await errorOf(refused)).code).toBe('QUOTA_BACKEND_UNAVAILABLE');
    expect((await readyz(url)).status).toBe(503);
    await redis.restart();
    await eventually(async () => (await readyz(url)).status === 200, 10_000, 'readyz 200 once Redis runs');
    expect(await statusOf(await call(url, token))).toBe(200);
  });

  it('a hung Redis: 503 within the bound, not a hanging request', async () => {
    const { url } = await start('reject');
    const token = await mintLimited(url, { global: { requestsPerMinute: 100 } });
    expect(await statusOf(await call(url, token))).toBe(200);
    redis.pause();
    const results = await Promise.all(Array.from({ length: 5 }, () => timed(url, token)));
    for (const r of results) expect((await errorOf(r.res)).code).toBe('QUOTA_BACKEND_UNAVAILABLE');
    expect(results.map((r) => r.status)).toEqual([503, 503, 503, 503, 503]);
    expect(Math.max(...results.map((r) => r.ms))).toBeLessThan(BOUND_MS);
    expect((await readyz(url)).status).toBe(503);
    redis.resume();
    await eventually(async () => (await readyz(url)).status === 200, 10_000, 'readyz 200 after SIGCONT');
    expect(await statusOf(await call(url, token))).toBe(200);
  });
});

describe('bad Redis settings', () => {
  it('are refused at start with one clear line each', async () => {
    const { loadConfig, ConfigError } = await import('../../src/config.js');
    const attempt = (env: Record<string, string>): string[] => {
      try {
        loadConfig({ AISBREAKER_SECRET: 'x'.repeat(40), ...env });
        return [];
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as InstanceType<typeof ConfigError>).problems;
      }
    };
    expect(attempt({ QUOTA_BACKEND_FAILURE: 'ignore' })).toEqual([expect.stringContaining('QUOTA_BACKEND_FAILURE')]);
    expect(attempt({ REDIS_COMMAND_TIMEOUT_MS: '0' })).toEqual([expect.stringContaining('REDIS_COMMAND_TIMEOUT_MS')]);
    expect(attempt({ REDIS_COMMAND_TIMEOUT_MS: '1s' })).toEqual([expect.stringContaining('REDIS_COMMAND_TIMEOUT_MS')]);
    expect(attempt({ REDIS_URL: 'localhost:6379' })).toEqual([expect.stringContaining('REDIS_URL')]);
  });
});
