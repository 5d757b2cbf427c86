import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { mint, startGateway, type TestGateway } from '../helpers/gateway.js';
import { expectError, getJson } from '../helpers/lifecycle-helpers.js';
import { MockOpenAi } from '../helpers/mock-openai.js';
import { freePort } from '../helpers/ports.js';
import { metric } from '../helpers/quota-helpers.js';

/**
 * Services with several upstreams: balanced, retried where no answer can have been produced,
 * and left out of rotation while they fail. Scripted mock upstreams play each failure.
 */

const OPERATOR_KEY = 'upstreams-operator-key-0123456789ab';
const SECRET = 'sk-upstreams-token-secret-0123456789';
const PRIMARY_ONLY_KEY = 'primary-only-operator-key-0123456789';
const BOTH_KEY = 'primary-and-backup-operator-key-01234';

async function startMocks(count: number): Promise<MockOpenAi[]> {
  return Promise.all(Array.from({ length: count }, () => MockOpenAi.start()));
}

describe('services with several upstreams', () => {
  let mocks: MockOpenAi[];
  let closed: string[];
  let dir: string;
  let gw: TestGateway;
  let token: string;
  const mock = (i: number): MockOpenAi => mocks[i] as MockOpenAi;

  beforeAll(async () => {
    mocks = await startMocks(9);
    closed = await Promise.all([freePort(), freePort(), freePort()].map(async (p) => `http://127.0.0.1:${await p}/v1`));
    process.env.UPSTREAM_KEY_A = 'operator-key-for-upstream-a';
    process.env.UPSTREAM_KEY_B = 'operator-key-for-upstream-b';
    const up = (i: number, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ baseUrl: mock(i).baseUrl, ...extra });
    dir = mkdtempSync(join(tmpdir(), 'aisbgw-upstreams-'));
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({
        services: {
          'chat:pair': { kind: 'openai', upstreams: [up(0, { weight: 3, operatorKeyEnv: 'UPSTREAM_KEY_A', name: 'a' }), up(1, { operatorKeyEnv: 'UPSTREAM_KEY_B', name: 'b' })] },
          'chat:ordered': { kind: 'openai', balance: 'fallback', upstreams: [{ baseUrl: closed[0] }, up(2), up(3)], circuit: { failures: 2, cooldownMs: 400 } },
          'chat:listed': { kind: 'openai', balance: 'fallback', upstreams: [up(4), up(5)], retry: { attempts: 2, on: [503], backoffMs: 1 } },
          'chat:unlisted': { kind: 'openai', balance: 'fallback', upstreams: [up(4), up(5)], retry: { attempts: 2, backoffMs: 1 } },
          'chat:flaky': { kind: 'openai', balance: 'fallback', upstreams: [up(6), up(7)], circuit: { failures: 2, cooldownMs: 300 } },
          'chat:gone': { kind: 'openai', upstreams: [{ baseUrl: closed[1] }, { baseUrl: closed[2] }], circuit: { failures: 1, cooldownMs: 60_000 } },
          'chat:busy': { kind: 'openai', balance: 'least-busy', upstreams: [up(2), up(3)] },
          'chat:primary': { kind: 'openai', baseUrl: closed[0], operatorKeyEnv: 'UPSTREAM_KEY_A', fallbacks: [{ service: 'chat:nowhere' }, { service: 'chat:backup', model: 'backup-model' }] },
          'chat:nowhere': { kind: 'openai', baseUrl: closed[1], operatorKeyEnv: 'UPSTREAM_KEY_A' },
          'chat:backup': { kind: 'openai', baseUrl: mock(8).baseUrl, operatorKeyEnv: 'UPSTREAM_KEY_B' },
        },
        keys: {
          [OPERATOR_KEY]: { project: 'Upstreams', role: 'all' },
          [PRIMARY_ONLY_KEY]: { project: 'Upstreams', role: 'primary' },
          [BOTH_KEY]: { project: 'Upstreams', role: 'both' },
        },
        roles: { all: { limits: { 'chat:pair': {} } }, primary: { limits: { 'chat:primary': {} } }, both: { limits: { 'chat:primary': {}, 'chat:backup': {} } } },
      }),
    );
    gw = await startGateway({ AISBREAKER_CONFIG: join(dir, 'config.json') });
    token = await mint(gw.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: '', authSecret: SECRET }] } });
  });
  afterAll(async () => {
    await gw.close();
    await Promise.all(mocks.map((m) => m.close()));
    rmSync(dir, { recursive: true, force: true });
    delete process.env.UPSTREAM_KEY_A;
    delete process.env.UPSTREAM_KEY_B;
  });

  function chat(model: string, options: { credential?: string; stream?: boolean; signal?: AbortSignal } = {}): Promise<Response> {
    return fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${options.credential ?? token}` },
      body: JSON.stringify({ model, stream: options.stream ?? false, messages: [{ role: 'user', content: 'hi' }] }),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }
  async function status(model: string, options: Parameters<typeof chat>[1] = {}): Promise<number> {
    const res = await chat(model, options);
    await res.arrayBuffer();
    return res.status;
  }

  it('weighted: 1,000 calls spread 3:1, each upstream with the operator key of its own', async () => {
    for (let i = 0; i < 1000; i++) expect(await status('chat:pair/m', { credential: OPERATOR_KEY })).toBe(200);
    expect(Math.abs(mock(0).received.length - 750)).toBeLessThanOrEqual(20);
    expect(mock(0).received.length + mock(1).received.length).toBe(1000);
    expect(new Set(mock(0).received.map((r) => r.headers.authorization))).toEqual(new Set(['Bearer operator-key-for-upstream-a']));
    expect(new Set(mock(1).received.map((r) => r.headers.authorization))).toEqual(new Set(['Bearer operator-key-for-upstream-b']));
    // a token's own secret goes to whichever upstream serves
    expect(await status('chat:pair/m')).toBe(200);
    expect([mock(0), mock(1)].some((m) => m.received.at(-1)?.headers.authorization === `Bearer ${SECRET}`)).toBe(true);
    expect(await metric(gw.url, 'aisbgw_upstream_calls_total', { service: 'chat:pair', upstream: 'a' })).toBeGreaterThan(700);
  });

  it('fallback: in order; an upstream refusing connections is tried, then left out (circuit open) and probed after the cooldown', async () => {
    for (let i = 0; i < 4; i++) expect(await status('chat:ordered/m')).toBe(200);
    expect(mock(2).received).toHaveLength(4);
    expect(mock(3).received).toHaveLength(0);
    // two failures in a row opened its circuit: calls 3 and 4 did not try it
    expect(await metric(gw.url, 'aisbgw_upstream_calls_total', { service: 'chat:ordered', upstream: '0' })).toBe(2);
    expect(await metric(gw.url, 'aisbgw_upstream_circuit_open', { service: 'chat:ordered', upstream: '0' })).toBe(1);
    expect(gw.logs.some((l) => l.includes('circuit open') && l.includes('chat:ordered'))).toBe(true);
    await new Promise((r) => setTimeout(r, 450));
    expect(await status('chat:ordered/m')).toBe(200);
    // one probe, which failed: out again
    expect(await metric(gw.url, 'aisbgw_upstream_calls_total', { service: 'chat:ordered', upstream: '0' })).toBe(3);
    expect(await status('chat:ordered/m')).toBe(200);
    expect(await metric(gw.url, 'aisbgw_upstream_calls_total', { service: 'chat:ordered', upstream: '0' })).toBe(3);
  });

  it('the circuit closes again once the probe succeeds', async () => {
    mock(6).next({ kind: 'fail', status: 503, body: { error: { message: 'down' } } }, { kind: 'fail', status: 503, body: { error: { message: 'down' } } });
    expect([await status('chat:flaky/m'), await status('chat:flaky/m'), await status('chat:flaky/m')]).toEqual([502, 502, 200]);
    expect(mock(7).received).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 350));
    expect(await status('chat:flaky/m')).toBe(200);
    expect(mock(6).received).toHaveLength(3);
    expect(await metric(gw.url, 'aisbgw_upstream_circuit_open', { service: 'chat:flaky', upstream: '0' })).toBe(0);
    expect(gw.logs.some((l) => l.includes('circuit closed') && l.includes('chat:flaky'))).toBe(true);
  });

  it('retries a listed status on the next upstream, and only a listed one; a call retried counts once against quotas', async () => {
    const limited = await mint(gw.url, { requestAuthAndQuotas: { requestQuotas: { perClientRequestLimits: { requestsPerMinute: 5 } }, serviceSecrets: [{ serviceId: '', authSecret: SECRET }] } });
    mock(4).next({ kind: 'fail', status: 503, body: { error: { message: 'busy' } } });
    expect(await status('chat:listed/m', { credential: limited })).toBe(200);
    expect([mock(4).received.length, mock(5).received.length]).toEqual([1, 1]);
    const info = await getJson<{ usage: { window: string; used: number }[] }>(`${gw.url}/api/v1/oauth/tokeninfo`, { Authorization: `Bearer ${limited}` });
    expect(info.json.usage.find((u) => u.window === 'minute')?.used).toBe(1);
    expect(await metric(gw.url, 'aisbgw_upstream_retries_total', { service: 'chat:listed' })).toBe(1);

    mock(4).next({ kind: 'fail', status: 503, body: { error: { message: 'busy' } } });
    expect(await status('chat:unlisted/m')).toBe(502);
    expect([mock(4).received.length, mock(5).received.length]).toEqual([2, 1]);
  });

  it('retries a 429 after a short Retry-After, passes a long one on to the caller', async () => {
    mock(4).next({ kind: 'fail', status: 429, body: { error: { message: 'slow down' } }, headers: { 'Retry-After': '0' } });
    expect(await status('chat:unlisted/m')).toBe(200);
    expect(mock(5).received).toHaveLength(2);
    mock(4).next({ kind: 'fail', status: 429, body: { error: { message: 'slow down' } }, headers: { 'Retry-After': '60' } });
    const res = await chat('chat:unlisted/m');
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('60');
    await res.arrayBuffer();
    expect(mock(5).received).toHaveLength(2);
  });

  it('never retries once a stream has started: a stream broken mid-way is the caller\'s, not sent twice', async () => {
    mock(4).next({ kind: 'drop-mid-stream' });
    const text = await (await chat('chat:listed/m', { stream: true })).text();
    expect(text).toContain('"error"');
    expect(mock(5).received.filter((r) => r.body.stream === true)).toHaveLength(0);
  });

  it('with every upstream out of rotation, 503 UPSTREAM_UNAVAILABLE at once', async () => {
    expect(await status('chat:gone/m')).toBe(503);
    const res = await chat('chat:gone/m');
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(res.status).toBe(503);
    expect(body.error.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(body.error.message).toContain('out of rotation');
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(50);
    expect(await metric(gw.url, 'aisbgw_upstream_calls_total', { service: 'chat:gone', upstream: '0' })).toBe(1);
  });

  it('fallbacks: when the service\'s upstreams all failed, the next service the caller may use answers, with its model', async () => {
    const res = await chat('chat:primary/gpt-4o');
    expect(res.status).toBe(200);
    expect(res.headers.get('aisbreaker-served-by')).toBe('chat:backup');
    await res.arrayBuffer();
    expect(mock(8).received.at(-1)?.body.model).toBe('backup-model');
    expect(mock(8).received.at(-1)?.headers.authorization).toBe(`Bearer ${SECRET}`);
    // the AIsBreaker API too, streaming
    const processed = await fetch(`${gw.url}/api/v1/process`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      body: JSON.stringify({ service: { serviceId: 'chat:primary/gpt-4o' }, request: { inputs: [{ text: { role: 'user', content: 'hi' } }], stream: true } }),
    });
    expect(processed.headers.get('aisbreaker-served-by')).toBe('chat:backup');
    expect(await processed.text()).toContain('event: final');

    // a token with no secret for the fallback: it is skipped, the first failure stands
    const narrow = await mint(gw.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:primary', authSecret: SECRET }] } });
    const received = mock(8).received.length;
    const refused = await chat('chat:primary/gpt-4o', { credential: narrow });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('aisbreaker-served-by')).toBe('chat:primary');
    await refused.arrayBuffer();
    expect(mock(8).received.length).toBe(received);

    // operator keys: only where their roles list the fallback, and with its own operator key
    expect(await status('chat:primary/gpt-4o', { credential: PRIMARY_ONLY_KEY })).toBe(503);
    expect(mock(8).received.length).toBe(received);
    expect(await status('chat:primary/gpt-4o', { credential: BOTH_KEY })).toBe(200);
    expect(mock(8).received.at(-1)?.headers.authorization).toBe('Bearer operator-key-for-upstream-b');
  });

  it('least-busy: a call goes to the upstream with fewer calls in flight', async () => {
    const before = [mock(2).received.length, mock(3).received.length];
    mock(2).next({ kind: 'stall' });
    const leaving = new AbortController();
    const stalled = chat('chat:busy/m', { signal: leaving.signal }).catch(() => undefined);
    while (mock(2).received.length === before[0]) await new Promise((r) => setTimeout(r, 10));
    expect(await status('chat:busy/m')).toBe(200);
    expect(mock(3).received.length).toBe((before[1] ?? 0) + 1);
    leaving.abort();
    await stalled;
  });
});

describe('the upstreams configuration', () => {
  async function problemsOf(services: unknown): Promise<string> {
    const dir = mkdtempSync(join(tmpdir(), 'aisbgw-upstreams-'));
    try {
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ services }));
      const failure = await startGateway({ AISBREAKER_CONFIG: join(dir, 'config.json') }).then(
        async (gw) => {
          await gw.close();
          return undefined;
        },
        (err: unknown) => err,
      );
      expect(failure).toBeInstanceOf(ConfigError);
      return (failure as ConfigError).message;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('is validated at start, naming the service and field', async () => {
    const url = 'http://127.0.0.1:9/v1';
    expect(await problemsOf({ 'chat:x': { kind: 'openai', baseUrl: url, upstreams: [{ baseUrl: url }] } })).toMatch(/services\.chat:x\.baseUrl: needs "baseUrl" or "upstreams" \(not both\)/);
    expect(await problemsOf({ 'chat:x': { kind: 'openai' } })).toMatch(/services\.chat:x\.baseUrl: needs "baseUrl" or "upstreams"/);
    expect(await problemsOf({ 'chat:x': { kind: 'openai', upstreams: [] } })).toMatch(/services\.chat:x\.upstreams: must list at least one upstream/);
    expect(await problemsOf({ 'chat:x': { kind: 'openai', upstreams: [{ baseUrl: url, weight: 0 }] } })).toMatch(/services\.chat:x\.upstreams\.0\.weight/);
    expect(await problemsOf({ 'chat:x': { kind: 'openai', upstreams: [{ baseUrl: 'file:///etc/passwd' }] } })).toMatch(/services\.chat:x\.upstreams\.0\.baseUrl: must be an http\(s\) URL/);
    expect(await problemsOf({ 'chat:x': { kind: 'openai', upstreams: [{ baseUrl: url }], balance: 'random' } })).toMatch(/services\.chat:x\.balance/);
    expect(await problemsOf({ 'chat:x': { kind: 'openai', upstreams: [{ baseUrl: url }], retry: { on: [200] } } })).toMatch(/services\.chat:x\.retry\.on\.0/);
    expect(await problemsOf({ 'chat:x': { kind: 'openai', upstreams: [{ baseUrl: url }], circuit: { failures: 0, cooldownMs: 1 } } })).toMatch(/services\.chat:x\.circuit\.failures/);
    expect(await problemsOf({ 'chat:x': { kind: 'openai', upstreams: [{ baseUrl: url }], fallbacks: [{ service: 'chat:y' }] } })).toMatch(/services\.chat:x\.fallbacks\.0\.service: "chat:y" is not a service of this server/);
    expect(await problemsOf({ 'chat:x': { kind: 'openai', baseUrl: url, fallbacks: [{ service: 'chat:x' }] } })).toMatch(/services\.chat:x\.fallbacks\.0\.service: a service cannot be its own fallback/);
    expect(await problemsOf({ 'chat:x': { kind: 'openai', baseUrl: url, fallbacks: [{ service: 'chat:dummy', url }] } })).toMatch(/services\.chat:x\.fallbacks\.0: Unrecognized key: "url"/);
  });
});
