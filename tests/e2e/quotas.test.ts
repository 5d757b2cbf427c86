import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../helpers/clock.js';
import { mint, postProcess, processBody, startGateway, type TestGateway } from '../helpers/gateway.js';
import { call, errorOf, expectRateLimited, metric, mintLimited, rateHeaders, statusOf, statuses } from '../helpers/quota-helpers.js';
import { TestRedis } from '../helpers/redis-server.js';

/**
 * Issue 3 end to end: a token's per-client and global quotas, over HTTP against the real gateway,
 * once with the in-process store and once with a real redis-server. Time is a ManualClock: the
 * gateway reads it for every quota decision (the Redis script too), so windows pass at once.
 *
 * The clock starts at 2030-01-01T12:00:00Z, which is aligned to every bucket (minute: 3 s,
 * hour: 180 s, day: 72 min), so the expected Retry-After and reset values are exact numbers.
 */

const SEC = 1000;
const MIN = 60 * SEC;
const HOUR = 60 * MIN;
const A = '1.1.1.1';
const B = '2.2.2.2';
const C = '3.3.3.3';

let redis: TestRedis;
beforeAll(async () => {
  redis = await TestRedis.start();
});
afterAll(async () => {
  await redis.stop();
});

const backends: [string, () => Record<string, string>][] = [
  ['memory store', () => ({})],
  ['redis store', () => ({ REDIS_URL: redis.url })],
];

describe.each(backends)('token quotas over HTTP (%s)', (_name, backendEnv) => {
  let gw: TestGateway;
  let clock: ManualClock;
  // clients are told apart by X-Forwarded-For, which the gateway believes only under TRUST_PROXY
  beforeAll(async () => {
    clock = new ManualClock();
    gw = await startGateway({ TRUST_PROXY: 'loopback', ...backendEnv() }, { clock: clock.read });
  });
  afterAll(() => gw.close());

  /** Moves the clock to `ms` after the start of the test (`start`). */
  function at(start: number, ms: number): void {
    expect(start + ms).toBeGreaterThanOrEqual(clock.now);
    clock.now = start + ms;
  }

  /** A start time aligned to the day bucket (72 min), after everything earlier tests did. */
  function freshStart(): number {
    const dayBucket = 72 * MIN;
    clock.now = (Math.floor(clock.now / dayBucket) + 2) * dayBucket;
    return clock.now;
  }

  it('AIsBreaker reference: requestsPerMinute N per client admits N per client address, then 429 naming client/minute/N', async () => {
    freshStart();
    const token = await mintLimited(gw.url, { client: { requestsPerMinute: 3 } });
    expect(await statuses(3, () => call(gw.url, token, A))).toEqual([200, 200, 200]);
    await expectRateLimited(await call(gw.url, token, A), { scope: 'client', window: 'minute', limit: 3 });
    // other clients have their own counters
    expect(await statuses(3, () => call(gw.url, token, B))).toEqual([200, 200, 200]);
    await expectRateLimited(await call(gw.url, token, B), { scope: 'client', window: 'minute', limit: 3 });
    expect(await statusOf(await call(gw.url, token, C))).toBe(200);
  });

  it('AIsBreaker reference: per client 1/3/5 and global 2/4/6 across clients 1.1.1.1, 2.2.2.2, 3.3.3.3', async () => {
    const t0 = freshStart();
    const token = await mintLimited(gw.url, {
      client: { requestsPerMinute: 1, requestsPerHour: 3, requestsPerDay: 5 },
      global: { requestsPerMinute: 2, requestsPerHour: 4, requestsPerDay: 6 },
    });
    expect(await statusOf(await call(gw.url, token, A))).toBe(200);
    // only A's own minute is used up
    const clientMinute = await expectRateLimited(await call(gw.url, token, A), { scope: 'client', window: 'minute', limit: 1 });
    expect(clientMinute.retryAfter).toBe(63); // its bucket [0 s, 3 s) leaves the minute at 63 s
    expect(await statusOf(await call(gw.url, token, B))).toBe(200);
    // C has used nothing, but the token's global minute (2) is full
    const globalMinute = await expectRateLimited(await call(gw.url, token, C), { scope: 'global', window: 'minute', limit: 2 });
    expect(globalMinute.retryAfter).toBe(63);

    at(t0, 2 * MIN);
    expect(await statusOf(await call(gw.url, token, C))).toBe(200);
    expect(await statusOf(await call(gw.url, token, A))).toBe(200);
    // 4 requests in the last hour: the global hour (4) is full while B's own windows have room
    at(t0, 4 * MIN);
    const globalHour = await expectRateLimited(await call(gw.url, token, B), { scope: 'global', window: 'hour', limit: 4 });
    // all four sit in the first hour bucket [0, 180 s), which leaves the hour at 3780 s
    expect(globalHour.retryAfter).toBe(3780 - 240);

    at(t0, 63 * MIN);
    expect(await statusOf(await call(gw.url, token, B))).toBe(200);
    at(t0, 64 * MIN);
    expect(await statusOf(await call(gw.url, token, A))).toBe(200);
    // 6 requests today: the global day (6) is full; C used 1 today, 0 this hour and minute
    at(t0, 65 * MIN);
    const globalDay = await expectRateLimited(await call(gw.url, token, C), { scope: 'global', window: 'day', limit: 6 });
    // all six sit in the first day bucket [0, 72 min), which leaves the day at 24 h + 72 min
    expect(globalDay.retryAfter).toBe(24 * 3600 + 72 * 60 - 65 * 60);
    expect(globalDay.message).toContain('6 requests per day');
  });

  it('per-client hour and day windows, each client on its own', async () => {
    const t0 = freshStart();
    const hourly = await mintLimited(gw.url, { client: { requestsPerHour: 3 } });
    for (let i = 0; i < 3; i++) {
      at(t0, i * 10 * MIN);
      expect(await statusOf(await call(gw.url, hourly, A))).toBe(200);
    }
    at(t0, 30 * MIN);
    const hour = await expectRateLimited(await call(gw.url, hourly, A), { scope: 'client', window: 'hour', limit: 3 });
    // the first request's bucket [0, 180 s) leaves the hour at 3780 s
    expect(hour.retryAfter).toBe(3780 - 30 * 60);
    expect(await statusOf(await call(gw.url, hourly, B))).toBe(200);

    const t1 = freshStart();
    const daily = await mintLimited(gw.url, { client: { requestsPerDay: 5 } });
    for (let i = 0; i < 5; i++) {
      at(t1, i * 2 * HOUR);
      expect(await statusOf(await call(gw.url, daily, C))).toBe(200);
    }
    at(t1, 12 * HOUR);
    const day = await expectRateLimited(await call(gw.url, daily, C), { scope: 'client', window: 'day', limit: 5 });
    expect(day.retryAfter).toBe(24 * 3600 + 72 * 60 - 12 * 3600);
    expect(await statusOf(await call(gw.url, daily, A))).toBe(200);
    // the day slides: once the first request's bucket has left, C gets exactly one more
    at(t1, 24 * HOUR + 72 * MIN);
    expect(await statuses(2, () => call(gw.url, daily, C))).toEqual([200, 429]);
  });

  it('Retry-After is the wait until that window admits again: admitted after exactly that long, not 1 ms earlier', async () => {
    const t0 = freshStart();
    const token = await mintLimited(gw.url, { client: { requestsPerMinute: 3 } });
    for (const ms of [0, 4 * SEC, 7 * SEC]) {
      at(t0, ms);
      expect(await statusOf(await call(gw.url, token, A))).toBe(200);
    }
    at(t0, 10_500);
    // the bucket [0, 3 s) leaves the window at 63 s: 52.5 s from now, announced as 53 s
    const first = await expectRateLimited(await call(gw.url, token, A), { scope: 'client', window: 'minute', limit: 3 });
    expect(first.retryAfter).toBe(53);
    at(t0, 63 * SEC - 1);
    const almost = await expectRateLimited(await call(gw.url, token, A), { scope: 'client', window: 'minute', limit: 3 });
    expect(almost.retryAfter).toBe(1);
    at(t0, 63 * SEC);
    expect(await statusOf(await call(gw.url, token, A))).toBe(200);

    // full again (buckets at 4 s, 7 s, 63 s): the 4 s bucket leaves at 66 s, exactly 3 s from now
    const second = await expectRateLimited(await call(gw.url, token, A), { scope: 'client', window: 'minute', limit: 3 });
    expect(second.retryAfter).toBe(3);
    clock.advance(second.retryAfter * SEC - 1);
    expect(await statusOf(await call(gw.url, token, A))).toBe(429);
    clock.advance(1);
    expect(await statusOf(await call(gw.url, token, A))).toBe(200);
  });

  it('when several windows are full, Retry-After waits for the last of them: the request is admitted then', async () => {
    const t0 = freshStart();
    const token = await mintLimited(gw.url, { client: { requestsPerMinute: 1, requestsPerHour: 1 } });
    expect(await statusOf(await call(gw.url, token, A))).toBe(200);
    const denied = await expectRateLimited(await call(gw.url, token, A), { scope: 'client', window: 'hour', limit: 1 });
    expect(denied.retryAfter).toBe(3780);
    // the minute has room again after 63 s, but the hour has not: still refused, naming the hour
    at(t0, 63 * SEC);
    await expectRateLimited(await call(gw.url, token, A), { scope: 'client', window: 'hour', limit: 1 });
    at(t0, 3780 * SEC - 1);
    expect(await statusOf(await call(gw.url, token, A))).toBe(429);
    at(t0, 3780 * SEC);
    expect(await statusOf(await call(gw.url, token, A))).toBe(200);
  });

  it('denied requests consume nothing: neither in other windows nor in the global scope', async () => {
    const t0 = freshStart();
    const token = await mintLimited(gw.url, { client: { requestsPerMinute: 2, requestsPerHour: 5 }, global: { requestsPerMinute: 4 } });
    expect(await statuses(2, () => call(gw.url, token, A))).toEqual([200, 200]);
    // twenty refusals for A count neither in A's hour nor in the token's global minute
    expect(await statuses(20, () => call(gw.url, token, A))).toEqual(Array<number>(20).fill(429));
    expect(await statuses(3, () => call(gw.url, token, B))).toEqual([200, 200, 429]);
    const third = await call(gw.url, token, C);
    await expectRateLimited(third, { scope: 'global', window: 'minute', limit: 4 });

    at(t0, 63 * SEC);
    const next = await call(gw.url, token, A);
    expect(next.status).toBe(200);
    // A's hour holds exactly its 3 admitted requests: 2 left, and the minute (1 left) is tightest
    expect(rateHeaders(next)).toEqual({ limit: 2, remaining: 1, reset: 63 });
    await next.arrayBuffer();
    expect(await statuses(2, () => call(gw.url, token, A))).toEqual([200, 429]);
    at(t0, 126 * SEC);
    const last = await call(gw.url, token, A);
    expect(last.status).toBe(200);
    expect(rateHeaders(last)).toMatchObject({ limit: 5, remaining: 0 });
    await last.arrayBuffer();
    await expectRateLimited(await call(gw.url, token, A), { scope: 'client', window: 'hour', limit: 5 });
  });

  it('sliding window: N at the end of one minute and N at the start of the next do not all pass', async () => {
    const t0 = freshStart();
    const n = 5;
    const token = await mintLimited(gw.url, { global: { requestsPerMinute: n } });
    const first: number[] = [];
    for (let i = 0; i < n; i++) {
      at(t0, 59 * SEC + i * 100);
      first.push(await statusOf(await call(gw.url, token, [A, B, C][i % 3])));
    }
    const second: number[] = [];
    for (let i = 0; i < n; i++) {
      at(t0, 60 * SEC + i * 100);
      second.push(await statusOf(await call(gw.url, token, [A, B, C][i % 3])));
    }
    expect(first).toEqual(Array<number>(n).fill(200));
    expect(second).toEqual(Array<number>(n).fill(429));
  });

  it('sliding window: no 60 s interval of a long uneven stream ever holds more than N admissions', async () => {
    const t0 = freshStart();
    const n = 7;
    const token = await mintLimited(gw.url, { global: { requestsPerMinute: n } });
    const admitted: number[] = [];
    // uneven arrivals: bursts and gaps, 4 minutes long, deterministic
    let t = 0;
    let step = 0;
    while (t < 4 * MIN) {
      at(t0, t);
      const res = await call(gw.url, token, [A, B, C][step % 3]);
      if ((await statusOf(res)) === 200) admitted.push(t);
      step++;
      t += step % 11 === 0 ? 9_700 : step % 3 === 0 ? 2_300 : 350;
    }
    for (const end of admitted) {
      const inWindow = admitted.filter((s) => s > end - MIN && s <= end).length;
      expect(inWindow, `admissions in the minute up to ${end} ms`).toBeLessThanOrEqual(n);
    }
    // and the undershoot is bounded: at least n per minute minus one bucket's worth gets through
    expect(admitted.length).toBeGreaterThanOrEqual(3 * n);
  });

  it('rate-limit headers on every authorized response show the tightest window', async () => {
    const t0 = freshStart();
    const token = await mintLimited(gw.url, { client: { requestsPerMinute: 5 }, global: { requestsPerHour: 3 } });
    // minute: 4 left; hour: 2 left -> the hour is tightest; its bucket leaves the window at 3780 s
    const first = await call(gw.url, token, A);
    expect(first.status).toBe(200);
    expect(rateHeaders(first)).toEqual({ limit: 3, remaining: 2, reset: 3780 });
    await first.arrayBuffer();
    at(t0, 1500);
    const second = await call(gw.url, token, B);
    expect(rateHeaders(second)).toEqual({ limit: 3, remaining: 1, reset: 3779 });
    await second.arrayBuffer();
    // a streamed answer carries them too
    const streamed = await call(gw.url, token, A, { stream: true });
    expect(streamed.status).toBe(200);
    expect(streamed.headers.get('content-type')).toContain('text/event-stream');
    expect(rateHeaders(streamed)).toEqual({ limit: 3, remaining: 0, reset: 3779 });
    expect(await streamed.text()).toContain('event: final');
    // the refusal says the same: nothing remaining, reset when it admits again
    const refused = await call(gw.url, token, C);
    expect(rateHeaders(refused)).toEqual({ limit: 3, remaining: 0, reset: 3779 });
    await expectRateLimited(refused, { scope: 'global', window: 'hour', limit: 3 });
  });

  it('the OpenAI-compatible routes share the same counters and carry the same headers', async () => {
    freshStart();
    const token = await mintLimited(gw.url, { global: { requestsPerMinute: 3 } });
    const openai = (path: string, body?: unknown): Promise<Response> =>
      fetch(`${gw.url}${path}`, {
        method: body === undefined ? 'GET' : 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', 'X-Forwarded-For': A },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    const chat = { model: 'chat:dummy/any', messages: [{ role: 'user', content: 'Hi' }] };
    const first = await call(gw.url, token, A);
    expect(rateHeaders(first)).toMatchObject({ limit: 3, remaining: 2 });
    await first.arrayBuffer();
    const completion = await openai('/v1/chat/completions', chat);
    expect(completion.status).toBe(200);
    expect(rateHeaders(completion)).toMatchObject({ limit: 3, remaining: 1 });
    await completion.arrayBuffer();
    const models = await openai('/v1/models');
    expect(models.status).toBe(200);
    expect(rateHeaders(models)).toMatchObject({ limit: 3, remaining: 0 });
    await models.arrayBuffer();
    const refused = await openai('/v1/chat/completions', { ...chat, stream: true });
    await expectRateLimited(refused, { scope: 'global', window: 'minute', limit: 3 });
  });

  it('rate-limit headers: the minute when it is tightest, and the earlier reset on a tie', async () => {
    const t0 = freshStart();
    const token = await mintLimited(gw.url, { client: { requestsPerMinute: 2 }, global: { requestsPerHour: 100 } });
    const first = await call(gw.url, token, A);
    expect(rateHeaders(first)).toEqual({ limit: 2, remaining: 1, reset: 63 });
    await first.arrayBuffer();
    at(t0, 1500);
    const second = await call(gw.url, token, A);
    expect(rateHeaders(second)).toEqual({ limit: 2, remaining: 0, reset: 62 }); // 61.5 s, rounded up
    expect(second.headers.get('x-ratelimit-reset-requests')).toBe('62s');
    await second.arrayBuffer();

    const tied = await mintLimited(gw.url, { client: { requestsPerMinute: 3 }, global: { requestsPerHour: 3 } });
    const res = await call(gw.url, tied, A);
    expect(rateHeaders(res)).toEqual({ limit: 3, remaining: 2, reset: 62 });
    await res.arrayBuffer();
  });

  it('counters belong to the jti: two tokens with equal claims minted at the same instant do not share them', async () => {
    freshStart();
    const body = {
      requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { requestsPerMinute: 2 } }, serviceSecrets: [{ serviceId: 'chat:dummy', authSecret: 'sk-same' }] },
      expirationTimeSpan: '1d',
    };
    const first = await mint(gw.url, body);
    const second = await mint(gw.url, body);
    expect(first).not.toBe(second);
    expect(await statuses(3, () => call(gw.url, first, A))).toEqual([200, 200, 429]);
    expect(await statuses(3, () => call(gw.url, second, A))).toEqual([200, 200, 429]);
  });

  it('counts quota decisions in /metrics', async () => {
    freshStart();
    const labels = { outcome: 'denied', scope: 'client', window: 'minute' };
    const deniedBefore = await metric(gw.url, 'aisbgw_quota_decisions_total', labels);
    const admittedBefore = await metric(gw.url, 'aisbgw_quota_decisions_total', { outcome: 'admitted', scope: '', window: '' });
    const token = await mintLimited(gw.url, { client: { requestsPerMinute: 1 } });
    expect(await statuses(4, () => call(gw.url, token, A))).toEqual([200, 429, 429, 429]);
    expect(await metric(gw.url, 'aisbgw_quota_decisions_total', labels)).toBe(deniedBefore + 3);
    expect(await metric(gw.url, 'aisbgw_quota_decisions_total', { outcome: 'admitted', scope: '', window: '' })).toBe(admittedBefore + 1);
  });

  it('refuses bad quotas at minting with a 400 naming the field, and mints nothing', async () => {
    freshStart();
    const token = await mintLimited(gw.url, { client: { requestsPerMinute: 2 } });
    expect(await statusOf(await call(gw.url, token, A))).toBe(200);
    const mintedBefore = await metric(gw.url, 'aisbgw_tokens_minted_total', { kind: 'new' });
    const cases: [unknown, string][] = [
      [{ perClientRequestLimits: { requestsPerMinute: -1 } }, 'requestAuthAndQuotas.requestQuotas.perClientRequestLimits.requestsPerMinute'],
      [{ perClientRequestLimits: { requestsPerMinute: 0 } }, 'requestAuthAndQuotas.requestQuotas.perClientRequestLimits.requestsPerMinute'],
      [{ globalRequestLimits: { requestsPerHour: 1.5 } }, 'requestAuthAndQuotas.requestQuotas.globalRequestLimits.requestsPerHour'],
      [{ globalRequestLimits: { requestsPerDay: '10' } }, 'requestAuthAndQuotas.requestQuotas.globalRequestLimits.requestsPerDay'],
      [{ globalRequestLimits: { requestsPerDay: 1e12 } }, 'requestAuthAndQuotas.requestQuotas.globalRequestLimits.requestsPerDay'],
      [{ globalRequestLimits: { requestsPerDay: null } }, 'requestAuthAndQuotas.requestQuotas.globalRequestLimits.requestsPerDay'],
      // a typo must not silently lift a limit
      [{ globalRequestLimits: { requestPerMinute: 5 } }, 'requestAuthAndQuotas.requestQuotas.globalRequestLimits'],
      [{ perClientLimits: { requestsPerMinute: 5 } }, 'requestAuthAndQuotas.requestQuotas'],
      [{ globalRequestLimits: 5 }, 'requestAuthAndQuotas.requestQuotas.globalRequestLimits'],
      ['10/minute', 'requestAuthAndQuotas.requestQuotas'],
    ];
    for (const [requestQuotas, field] of cases) {
      const res = await fetch(`${gw.url}/api/v1/oauth/token`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ requestAuthAndQuotas: { requestQuotas } }),
      });
      expect(res.status, JSON.stringify(requestQuotas)).toBe(400);
      const error = await errorOf(res);
      expect(error.code).toBe('INVALID_REQUEST');
      expect(error.details?.field, JSON.stringify(requestQuotas)).toBe(field);
      expect(error.message.startsWith(`${field}: `)).toBe(true);
    }
    expect(await metric(gw.url, 'aisbgw_tokens_minted_total', { kind: 'new' })).toBe(mintedBefore);
    // the earlier token's counters are untouched: exactly one request left
    expect(await statuses(2, () => call(gw.url, token, A))).toEqual([200, 429]);
  });

  it('requests refused before the quota check (no or bad credential) count against no token', async () => {
    freshStart();
    const token = await mintLimited(gw.url, { global: { requestsPerMinute: 2 } });
    expect((await errorOf(await call(gw.url, undefined, A))).code).toBe('MISSING_API_KEY');
    const tampered = token.slice(0, -4) + (token.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    expect((await errorOf(await call(gw.url, tampered, A))).code).toBe('INVALID_API_KEY');
    const wrongHost = await postProcess(gw.url.replace('127.0.0.1', 'localhost'), token, processBody('chat:dummy', 'hi'));
    expect((await errorOf(wrongHost)).code).toBe('WRONG_HOST');
    expect(await statuses(3, () => call(gw.url, token, A))).toEqual([200, 200, 429]);
  });
});
