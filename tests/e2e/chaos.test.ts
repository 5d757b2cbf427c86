import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mint, processBody, startGateway, type TestGateway } from '../helpers/gateway.js';
import { MockOpenAi, mockAnswer } from '../helpers/mock-openai.js';
import { TestRedis } from '../helpers/redis-server.js';

/**
 * Chaos: Redis killed and restarted repeatedly under load, Redis hung (SIGSTOP), and an upstream
 * that drops or stalls mid-stream. The gateway never crashes (an unhandled rejection or exception
 * fails the run), no request outlives its timeouts, each gateway behaves per its
 * QUOTA_BACKEND_FAILURE policy, and both recover without a restart.
 */

const COMMAND_TIMEOUT_MS = 300;
/**
 * The longest any request may take while Redis misbehaves: one command timeout, plus generous
 * slack for two shared, busy cores. Redis is hung for longer than this, so a request that waited
 * for Redis instead of timing out would exceed it.
 */
const REQUEST_BOUND_MS = COMMAND_TIMEOUT_MS + 2700;
const HANG_MS = REQUEST_BOUND_MS + 1000;

interface Outcome {
  status: number;
  code?: string;
  ms: number;
  /** set when the request failed at the HTTP level or outlived its deadline */
  failure?: string;
  gateway: 'memory' | 'reject';
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await sleep(50);
  }
}

/** One request with a hard deadline; JSON or streamed; its outcome, never a throw. */
async function request(gw: TestGateway, token: string, stream: boolean, gateway: Outcome['gateway']): Promise<Outcome> {
  const started = Date.now();
  try {
    const res = await fetch(`${gw.url}/api/v1/process`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      body: processBody('chat:dummy', 'chaos', stream ? { stream: true } : {}),
      signal: AbortSignal.timeout(REQUEST_BOUND_MS + 2000),
    });
    const text = await res.text();
    const outcome: Outcome = { status: res.status, ms: Date.now() - started, gateway };
    if (res.status !== 200) outcome.code = (JSON.parse(text) as { error: { code: string } }).error.code;
    else if (stream && !text.includes('event: final')) outcome.failure = 'stream without its final event';
    return outcome;
  } catch (err) {
    return { status: 0, ms: Date.now() - started, failure: String(err), gateway };
  }
}

/** `workers` loops of requests on each gateway until `stop()`; returns every outcome. */
function load(targets: { gw: TestGateway; token: string; name: Outcome['gateway'] }[], workers: number): { stop: () => Promise<Outcome[]> } {
  let running = true;
  const outcomes: Outcome[] = [];
  const loops = targets.flatMap((t) =>
    Array.from({ length: workers }, async (_, w) => {
      for (let i = 0; running; i++) outcomes.push(await request(t.gw, t.token, (i + w) % 3 === 0, t.name));
    }),
  );
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return outcomes;
    },
  };
}

async function readyz(gw: TestGateway): Promise<number> {
  return (await fetch(`${gw.url}/readyz`)).status;
}

describe('chaos: Redis killed, restarted and hung under load', () => {
  let redis: TestRedis;
  let inspect: Redis;
  let memoryGw: TestGateway;
  let rejectGw: TestGateway;
  let memoryToken: string;
  let rejectToken: string;

  beforeAll(async () => {
    redis = await TestRedis.start();
    inspect = redis.client();
    // this inspecting client reconnects through the outages too; its errors are expected
    inspect.on('error', () => undefined);
    const env = { REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS), LOG_LEVEL: 'info' };
    [memoryGw, rejectGw] = await Promise.all([startGateway({ ...env, QUOTA_BACKEND_FAILURE: 'memory' }), startGateway({ ...env, QUOTA_BACKEND_FAILURE: 'reject' })]);
    const generous = { requestAuthAndQuotas: { requestQuotas: { perClientRequestLimits: { requestsPerMinute: 1_000_000 }, globalRequestLimits: { requestsPerMinute: 1_000_000 } } } };
    memoryToken = await mint(memoryGw.url, generous);
    rejectToken = await mint(rejectGw.url, generous);
  });
  afterAll(async () => {
    inspect.disconnect();
    await Promise.all([memoryGw?.close(), rejectGw?.close()]);
    await redis.stop();
  });

  it('killed and restarted three times during load: memory keeps serving, reject answers 503, both recover by themselves', async () => {
    const traffic = load(
      [
        { gw: memoryGw, token: memoryToken, name: 'memory' },
        { gw: rejectGw, token: rejectToken, name: 'reject' },
      ],
      3,
    );
    const readyDuringOutage: number[] = [];
    for (let cycle = 0; cycle < 3; cycle++) {
      await sleep(400);
      await redis.kill();
      await sleep(300);
      readyDuringOutage.push(await readyz(rejectGw));
      await sleep(400);
      await redis.restart();
    }
    await sleep(300);
    const outcomes = await traffic.stop();

    const failures = outcomes.filter((o) => o.failure !== undefined);
    expect(failures).toEqual([]);
    const slowest = Math.max(...outcomes.map((o) => o.ms));
    expect(slowest).toBeLessThan(REQUEST_BOUND_MS);
    const memory = outcomes.filter((o) => o.gateway === 'memory');
    const reject = outcomes.filter((o) => o.gateway === 'reject');
    expect(memory.length).toBeGreaterThan(30);
    // memory: every request served, outage or not
    expect(memory.filter((o) => o.status !== 200)).toEqual([]);
    // reject: served, or refused with the contract's 503
    expect(reject.filter((o) => !(o.status === 200 || (o.status === 503 && o.code === 'QUOTA_BACKEND_UNAVAILABLE')))).toEqual([]);
    expect(reject.some((o) => o.status === 503)).toBe(true);
    expect(reject.some((o) => o.status === 200)).toBe(true);
    expect(readyDuringOutage.some((s) => s === 503)).toBe(true);

    // recovery without a restart: each gateway sees its outage end (the probe needs no traffic),
    // is ready again, serves, and counts in the new Redis
    const told = (gw: TestGateway, what: string): number => gw.logs.filter((l) => l.includes(what)).length;
    for (const gw of [memoryGw, rejectGw]) {
      await until(async () => told(gw, 'quota store recovered') === told(gw, 'quota store unavailable'), 5000, 'the outage logged as ended');
    }
    await until(async () => (await readyz(rejectGw)) === 200, 5000, 'reject gateway ready again');
    await until(async () => (await request(rejectGw, rejectToken, false, 'reject')).status === 200, 5000, 'reject gateway serving again');
    for (const gw of [memoryGw, rejectGw]) {
      const limited = await mint(gw.url, { requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { requestsPerMinute: 3 } } } });
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await request(gw, limited, false, 'memory')).status);
      expect(statuses).toEqual([200, 200, 200, 429, 429]);
    }
    expect(await inspect.dbsize()).toBeGreaterThan(0);
    // each outage was told once when it started and once when it ended, not once per request
    for (const gw of [memoryGw, rejectGw]) {
      const down = told(gw, 'quota store unavailable');
      expect(down).toBeGreaterThanOrEqual(1);
      expect(down).toBeLessThanOrEqual(3);
      expect(told(gw, 'quota store recovered')).toBe(down);
    }
  });

  it('hung (SIGSTOP) under load: no request waits longer than the command timeout allows; then recovers', async () => {
    const traffic = load(
      [
        { gw: memoryGw, token: memoryToken, name: 'memory' },
        { gw: rejectGw, token: rejectToken, name: 'reject' },
      ],
      2,
    );
    await sleep(300);
    redis.pause();
    try {
      await sleep(HANG_MS);
    } finally {
      redis.resume();
    }
    await sleep(300);
    const outcomes = await traffic.stop();

    expect(outcomes.filter((o) => o.failure !== undefined)).toEqual([]);
    expect(Math.max(...outcomes.map((o) => o.ms))).toBeLessThan(REQUEST_BOUND_MS);
    expect(outcomes.filter((o) => o.gateway === 'memory' && o.status !== 200)).toEqual([]);
    const reject = outcomes.filter((o) => o.gateway === 'reject');
    expect(reject.filter((o) => !(o.status === 200 || (o.status === 503 && o.code === 'QUOTA_BACKEND_UNAVAILABLE')))).toEqual([]);
    expect(reject.some((o) => o.status === 503)).toBe(true);

    await until(async () => (await readyz(rejectGw)) === 200, 5000, 'reject gateway ready after the hang');
    await until(async () => (await request(rejectGw, rejectToken, false, 'reject')).status === 200, 5000, 'reject gateway serving after the hang');
    expect((await request(memoryGw, memoryToken, true, 'memory')).status).toBe(200);
  });

  it('slow (stopped 100 ms, running 100 ms, for 3 s) under load: served within bounds by both policies', async () => {
    const traffic = load(
      [
        { gw: memoryGw, token: memoryToken, name: 'memory' },
        { gw: rejectGw, token: rejectToken, name: 'reject' },
      ],
      2,
    );
    try {
      for (let i = 0; i < 15; i++) {
        redis.pause();
        await sleep(100);
        redis.resume();
        await sleep(100);
      }
    } finally {
      redis.resume();
    }
    const outcomes = await traffic.stop();
    expect(outcomes.filter((o) => o.failure !== undefined)).toEqual([]);
    expect(Math.max(...outcomes.map((o) => o.ms))).toBeLessThan(REQUEST_BOUND_MS);
    expect(outcomes.filter((o) => o.gateway === 'memory' && o.status !== 200)).toEqual([]);
    expect(outcomes.filter((o) => o.gateway === 'reject' && !(o.status === 200 || (o.status === 503 && o.code === 'QUOTA_BACKEND_UNAVAILABLE')))).toEqual([]);
    expect(outcomes.filter((o) => o.gateway === 'reject' && o.status === 200).length).toBeGreaterThan(0);
    await until(async () => (await readyz(rejectGw)) === 200, 5000, 'reject gateway ready after the slow phase');
  });

  it('logged no unhandled error on either gateway', () => {
    for (const gw of [memoryGw, rejectGw]) expect(gw.logs.filter((l) => l.includes('unhandled error'))).toEqual([]);
  });
});

describe('chaos: an upstream that drops or stalls mid-stream', () => {
  let mock: MockOpenAi;
  let gw: TestGateway;
  let token: string;
  let dir: string;
  const UPSTREAM_SECRET = 'sk-chaos-upstream-0123456789abcdef';

  beforeAll(async () => {
    mock = await MockOpenAi.start();
    dir = mkdtempSync(join(tmpdir(), 'aisbgw-chaos-'));
    const config = join(dir, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({ services: { 'chat:openai.com': { kind: 'openai', baseUrl: mock.baseUrl, timeouts: { connectMs: 1000, firstByteMs: 800, idleMs: 800 } } } }),
    );
    gw = await startGateway({ AISBREAKER_CONFIG: config });
    token = await mint(gw.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: UPSTREAM_SECRET }] } });
  });
  afterAll(async () => {
    await gw?.close();
    await mock?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function chat(stream: boolean): Promise<{ status: number; text: string; ms: number }> {
    const started = Date.now();
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'tell me more' }], stream }),
      signal: AbortSignal.timeout(5000),
    });
    return { status: res.status, text: await res.text(), ms: Date.now() - started };
  }

  async function aisProcess(stream: boolean): Promise<{ status: number; text: string; ms: number }> {
    const started = Date.now();
    const res = await fetch(`${gw.url}/api/v1/process`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      body: processBody('chat:openai.com/gpt-4o-mini', 'tell me more', stream ? { stream: true } : {}),
      signal: AbortSignal.timeout(5000),
    });
    return { status: res.status, text: await res.text(), ms: Date.now() - started };
  }

  it('a healthy stream first (the mock and the wiring work)', async () => {
    const res = await chat(true);
    expect(res.status).toBe(200);
    expect(res.text).toContain('data: [DONE]');
    expect(res.text.replace(/"content":"([^"]*)"/g, '$1')).toContain('Mock');
  });

  it('dropped after two chunks: /v1/chat/completions ends the stream with an error event, at once', async () => {
    mock.next({ kind: 'drop-mid-stream' });
    const res = await chat(true);
    expect(res.status).toBe(200);
    const events = res.text.split('\n\n').filter((e) => e.startsWith('data: '));
    expect(events.length).toBeGreaterThanOrEqual(2);
    const last = JSON.parse(events.at(-1)?.slice('data: '.length) ?? '{}') as { error?: { code?: string } };
    expect(last.error?.code).toMatch(/^UPSTREAM_/);
    expect(res.text).not.toContain('[DONE]');
    expect(res.ms).toBeLessThan(2000);
  });

  it('dropped after two chunks: /api/v1/process ends with event: error', async () => {
    mock.next({ kind: 'drop-mid-stream' });
    const res = await aisProcess(true);
    expect(res.status).toBe(200);
    expect(res.text).toContain('event: progress');
    expect(res.text).toMatch(/event: error\ndata: .*UPSTREAM_/);
    expect(res.text).not.toContain('event: final');
    expect(res.ms).toBeLessThan(2000);
  });

  it('stalled after the first chunk: cut after the idle timeout, not left hanging', async () => {
    mock.next({ kind: 'stall-mid-stream' });
    const res = await chat(true);
    expect(res.status).toBe(200);
    // the idle timeout cut it (undici's timers are coarse, so only the upper bound is sharp)
    expect(res.text).toMatch(/UPSTREAM_TIMEOUT/);
    expect(res.ms).toBeLessThan(3000);
  });

  it('dropped before answering: 502/503 with the envelope; stalled before answering: 504 after the first-byte timeout', async () => {
    mock.next({ kind: 'drop' });
    const dropped = await chat(false);
    expect([502, 503]).toContain(dropped.status);
    expect((JSON.parse(dropped.text) as { error: { code: string } }).error.code).toMatch(/^UPSTREAM_(ERROR|UNAVAILABLE)$/);
    mock.next({ kind: 'stall' });
    const stalled = await chat(false);
    expect(stalled.status).toBe(504);
    expect((JSON.parse(stalled.text) as { error: { code: string } }).error.code).toBe('UPSTREAM_TIMEOUT');
    expect(stalled.ms).toBeLessThan(3000);
  });

  it('ten drops in a row under concurrency, then the gateway serves as before; the upstream secret leaked nowhere', async () => {
    mock.next(...Array.from({ length: 10 }, () => ({ kind: 'drop-mid-stream' as const })));
    const results = await Promise.all(Array.from({ length: 10 }, () => chat(true)));
    expect(results.every((r) => r.status === 200 && /UPSTREAM_/.test(r.text) && r.ms < 3000)).toBe(true);
    const after = await chat(false);
    expect(after.status).toBe(200);
    expect((JSON.parse(after.text) as { choices: { message: { content: string } }[] }).choices[0]?.message.content).toBe(mockAnswer('tell me more'));
    // the mock saw the token's secret (it is the upstream), but no log line and no answer holds it
    expect(mock.received.at(-1)?.headers.authorization).toBe(`Bearer ${UPSTREAM_SECRET}`);
    expect(gw.logs.filter((l) => l.includes(UPSTREAM_SECRET) || l.includes(token.slice(-40)))).toEqual([]);
    expect(results.filter((r) => r.text.includes(UPSTREAM_SECRET))).toEqual([]);
    expect(gw.logs.filter((l) => l.includes('unhandled error'))).toEqual([]);
  });
});
