import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_SECRET, mint, postProcess, processBody, startGateway, type TestGateway } from '../helpers/gateway.js';
import { MockOpenAi } from '../helpers/mock-openai.js';
import { TestRedis } from '../helpers/redis-server.js';

/**
 * /healthz, /readyz and /metrics of a gateway on Redis: ready while Redis is up, not ready while it
 * is down under QUOTA_BACKEND_FAILURE=reject, ready on the fallback under memory; the documented
 * metric families, and never a token, key or secret in them.
 */

const ADMIN_KEY = 'health-admin-key-0123456789abcdefgh';
const OPERATOR_KEY = 'health-operator-key-0123456789abcdefgh';
const SERVER_OPENAI_KEY = 'sk-server-openai-key-0123456789abcdef';
const TOKEN_UPSTREAM_SECRET = 'sk-token-upstream-secret-0123456789abcd';

async function json(res: Response): Promise<unknown> {
  return res.json();
}

async function until(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function metricsText(url: string): Promise<string> {
  const res = await fetch(`${url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain');
  return res.text();
}

function sample(text: string, name: string): number | undefined {
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

describe('health, readiness and metrics', () => {
  let redis: TestRedis;
  let mock: MockOpenAi;
  let strict: TestGateway;
  let lenient: TestGateway;
  let memoryOnly: TestGateway;
  let dir: string;

  beforeAll(async () => {
    [redis, mock] = await Promise.all([TestRedis.start(), MockOpenAi.start()]);
    dir = mkdtempSync(join(tmpdir(), 'aisbgw-health-'));
    const config = join(dir, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({ keys: { [OPERATOR_KEY]: { project: 'HealthProject', role: 'user' } }, roles: { user: { limits: { 'chat:dummy': { requestMinute: 2 }, 'gpt-4o-mini': {} } } } }),
    );
    const env = { REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: '500', AISBREAKER_ADMIN_KEY: ADMIN_KEY, AISBREAKER_CONFIG: config, OPENAI_BASE_URL: mock.baseUrl, OPENAI_API_KEY: SERVER_OPENAI_KEY };
    [strict, lenient, memoryOnly] = await Promise.all([
      startGateway({ ...env, QUOTA_BACKEND_FAILURE: 'reject' }),
      startGateway({ ...env, QUOTA_BACKEND_FAILURE: 'memory' }),
      startGateway({ AISBREAKER_ADMIN_KEY: ADMIN_KEY }),
    ]);
    for (const gw of [strict, lenient]) {
      await until(async () => ((await json(await fetch(`${gw.url}/readyz`))) as { quotaStore?: string }).quotaStore === 'redis', 10_000, 'the gateway is connected to Redis');
    }
  });

  afterAll(async () => {
    await Promise.all([strict?.close(), lenient?.close(), memoryOnly?.close(), mock?.close()]);
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('/healthz answers ok and /readyz ready, with Redis and without', async () => {
    for (const gw of [strict, lenient, memoryOnly]) {
      const health = await fetch(`${gw.url}/healthz`);
      expect(health.status).toBe(200);
      expect(await json(health)).toEqual({ status: 'ok' });
      const ready = await fetch(`${gw.url}/readyz`);
      expect(ready.status).toBe(200);
      expect(await json(ready)).toEqual({ status: 'ready', quotaStore: gw === memoryOnly ? 'memory' : 'redis' });
    }
  });

  it('/metrics has every documented family, and no token, key, secret or token id anywhere in it', async () => {
    const admin = { Authorization: `Bearer ${ADMIN_KEY}` };
    const token = await mint(
      lenient.url,
      {
        requestAuthAndQuotas: {
          requestQuotas: { perClientRequestLimits: { requestsPerMinute: 10 } },
          serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: TOKEN_UPSTREAM_SECRET }],
        },
        expirationTimeSpan: '1h',
      },
      admin,
    );
    const auth = { Authorization: `Bearer ${token}` };
    const info = (await json(await fetch(`${lenient.url}/api/v1/oauth/tokeninfo`, { headers: auth }))) as { jti: string };
    const child = await mint(lenient.url, { requestAuthAndQuotas: { requestQuotas: { perClientRequestLimits: { requestsPerMinute: 1 } } }, expirationTimeSpan: '10m' }, auth);

    // use: dummy, the upstream (JSON, stream, an upstream error), the OpenAI route, a 429, unknown paths carrying the token
    expect((await postProcess(lenient.url, token, processBody('chat:dummy', 'hello'))).status).toBe(200);
    expect((await postProcess(lenient.url, token, processBody('chat:openai.com/gpt-4o-mini', 'hello', { stream: true }))).status).toBe(200);
    const completion = await fetch(`${lenient.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: 'chat:openai.com/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(completion.status).toBe(200);
    await completion.arrayBuffer();
    mock.next({ kind: 'fail', status: 401, body: { error: { message: `Incorrect API key provided: ${TOKEN_UPSTREAM_SECRET}`, type: 'invalid_request_error', code: 'invalid_api_key' } } });
    const failed = await postProcess(lenient.url, child, processBody('chat:openai.com/gpt-4o-mini', 'x'));
    expect(failed.status).toBe(401);
    expect(await failed.text()).not.toContain(TOKEN_UPSTREAM_SECRET);
    expect((await postProcess(lenient.url, child, processBody('chat:dummy', 'x'))).status).toBe(429);
    expect((await fetch(`${lenient.url}/api/v1/process/${token}?token=${token}&key=${OPERATOR_KEY}`, { method: 'POST' })).status).toBe(404);
    await (await fetch(`${lenient.url}/v1/deployments/${encodeURIComponent(OPERATOR_KEY)}/limits`, { headers: auth })).arrayBuffer();

    // operator key, up to its limit and beyond, with the server's own upstream key
    for (let i = 0; i < 3; i++) await (await postProcess(lenient.url, undefined, processBody('chat:dummy', 'k'), { 'Api-Key': OPERATOR_KEY })).arrayBuffer();
    expect((await postProcess(lenient.url, OPERATOR_KEY, processBody('chat:openai.com/gpt-4o-mini', 'k'))).status).toBe(200);
    // refused credentials
    expect((await postProcess(lenient.url, `${token.slice(0, -4)}AAAA`, processBody('chat:dummy', 'x'))).status).toBe(401);
    expect((await postProcess(lenient.url, 'not-the-key-of-anyone-0123456789', processBody('chat:dummy', 'x'))).status).toBe(401);

    // revoke: the child by its holder, the parent by the admin (by jti), then a refused use
    expect((await fetch(`${lenient.url}/api/v1/oauth/revoke`, { method: 'POST', body: new URLSearchParams({ token: child }) })).status).toBe(200);
    expect((await fetch(`${lenient.url}/api/v1/oauth/revoke`, { method: 'POST', headers: admin, body: new URLSearchParams({ jti: info.jti }) })).status).toBe(200);
    expect((await postProcess(lenient.url, token, processBody('chat:dummy', 'again'))).status).toBe(401);

    const text = await metricsText(lenient.url);
    const families: [string, string][] = [
      ['aisbgw_http_requests_total', 'counter'],
      ['aisbgw_http_request_duration_seconds', 'histogram'],
      ['aisbgw_gateway_overhead_seconds', 'histogram'],
      ['aisbgw_upstream_duration_seconds', 'histogram'],
      ['aisbgw_upstream_errors_total', 'counter'],
      ['aisbgw_quota_decisions_total', 'counter'],
      ['aisbgw_quota_store_degraded', 'gauge'],
      ['aisbgw_quota_store_errors_total', 'counter'],
      ['aisbgw_tokens_minted_total', 'counter'],
      ['aisbgw_tokens_revoked_total', 'counter'],
      ['aisbgw_llm_tokens_total', 'counter'],
      ['aisbgw_process_cpu_user_seconds_total', 'counter'],
    ];
    for (const [name, type] of families) expect(text).toContain(`# TYPE ${name} ${type}`);
    expect(text).toMatch(/^aisbgw_tokens_minted_total\{kind="new"\} 1$/m);
    expect(text).toMatch(/^aisbgw_tokens_minted_total\{kind="derived"\} 1$/m);
    expect(text).toMatch(/^aisbgw_tokens_revoked_total\{by="holder"\} 1$/m);
    expect(text).toMatch(/^aisbgw_tokens_revoked_total\{by="admin"\} 1$/m);
    expect(text).toMatch(/^aisbgw_quota_decisions_total\{outcome="denied",scope="client",window="minute"\} 1$/m);
    expect(text).toMatch(/^aisbgw_quota_decisions_total\{outcome="denied",scope="global",window="minute"\} 1$/m);
    expect(text).toMatch(/^aisbgw_quota_decisions_total\{outcome="revoked",scope="",window=""\} 1$/m);
    expect(text).toMatch(/^aisbgw_upstream_errors_total\{[^}]*service="chat:openai\.com"[^}]*\} 1$/m);
    expect(text).toMatch(/^aisbgw_upstream_duration_seconds_count\{[^}]*service="chat:openai\.com"[^}]*\} [1-9]/m);
    expect(text).toMatch(/^aisbgw_llm_tokens_total\{[^}]*\} [1-9]/m);
    expect(text).toMatch(/^aisbgw_http_requests_total\{route="\/api\/v1\/process",method="POST",status="401"[^}]*\} [1-9]/m);
    expect(text).toMatch(/^aisbgw_http_requests_total\{route="unmatched",method="POST",status="404"[^}]*\} 1$/m);
    expect(sample(text, 'aisbgw_quota_store_degraded')).toBe(0);

    const forbidden: [string, string][] = [
      ['the token', token],
      ['the child token', child],
      ['the token id', info.jti],
      ['the admin key', ADMIN_KEY],
      ['the operator key', OPERATOR_KEY],
      ["the token's upstream secret", TOKEN_UPSTREAM_SECRET],
      ["the server's upstream key", SERVER_OPENAI_KEY],
      ['the server secret', TEST_SECRET],
    ];
    // each JWE part of a token on its own too (the header part is the same for every token)
    for (const [i, part] of token.slice('aisbreaker_'.length).split('.').entries()) if (i > 0 && part.length >= 16) forbidden.push([`token part ${i}`, part]);
    for (const [what, value] of forbidden) expect(text.includes(value), `${what} appears in /metrics`).toBe(false);
    // labels are bounded: no path beyond the route patterns
    expect(text).not.toMatch(/route="[^"]*(token=|aisbreaker_)/);
  });

  it('/readyz: not ready while Redis is down under reject, ready on the fallback under memory, ready again when Redis is back', async () => {
    const token = await mint(lenient.url, { requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { requestsPerMinute: 100 } } } }, { Authorization: `Bearer ${ADMIN_KEY}` });
    await redis.kill();

    // reject: not ready, without waiting for traffic to find out
    await until(async () => (await fetch(`${strict.url}/readyz`)).status === 503, 3000, 'the reject gateway reports not ready');
    const notReady = await fetch(`${strict.url}/readyz`);
    expect(await json(notReady)).toEqual({ status: 'not ready', quotaStore: 'unavailable' });
    const rejected = await postProcess(strict.url, token, processBody('chat:dummy', 'down'));
    expect(rejected.status).toBe(503);
    expect(((await json(rejected)) as { error: { code: string } }).error.code).toBe('QUOTA_BACKEND_UNAVAILABLE');
    // alive all the same
    expect((await fetch(`${strict.url}/healthz`)).status).toBe(200);

    // memory: serves on the fallback and says so in the metrics, ready all along
    expect((await postProcess(lenient.url, token, processBody('chat:dummy', 'down'))).status).toBe(200);
    const fallback = await fetch(`${lenient.url}/readyz`);
    expect(fallback.status).toBe(200);
    expect(await json(fallback)).toEqual({ status: 'ready', quotaStore: 'fallback' });
    const degraded = await metricsText(lenient.url);
    expect(sample(degraded, 'aisbgw_quota_store_degraded')).toBe(1);
    expect(sample(degraded, 'aisbgw_quota_store_errors_total')).toBeGreaterThanOrEqual(1);

    await redis.restart();
    await until(async () => (await fetch(`${strict.url}/readyz`)).status === 200, 5000, 'the reject gateway is ready again');
    expect((await postProcess(strict.url, token, processBody('chat:dummy', 'back'))).status).toBe(200);
    await until(async () => sample(await metricsText(lenient.url), 'aisbgw_quota_store_degraded') === 0, 5000, 'the memory gateway left the fallback');
  });
});
