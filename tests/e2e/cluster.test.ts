import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mint, postProcess, processBody, startGateway, type TestGateway } from '../helpers/gateway.js';
import { TestRedisCluster } from '../helpers/redis-cluster.js';

/**
 * The gateway on a real local Redis Cluster (three masters, REDIS_CLUSTER_NODES): two gateways
 * share it, one with QUOTA_BACKEND_FAILURE=memory and every node listed, one with reject and a
 * single seed node.
 */

const OPERATOR_KEY = 'cluster-operator-key-0123456789abcdef';
const OPERATOR_KEY_ID = createHash('sha256').update(OPERATOR_KEY).digest('hex').slice(0, 32);
const COMMAND_TIMEOUT_MS = 1000;

async function jtiOf(url: string, token: string): Promise<string> {
  const res = await fetch(`${url}/api/v1/oauth/tokeninfo`, { headers: { Authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  return ((await res.json()) as { jti: string }).jti;
}

async function statuses(requests: Promise<Response>[]): Promise<number[]> {
  const responses = await Promise.all(requests);
  await Promise.all(responses.map((r) => r.arrayBuffer()));
  return responses.map((r) => r.status);
}

function count(values: number[], value: number): number {
  return values.filter((v) => v === value).length;
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  if (!match?.[1]) throw new Error(`metric ${name} not found`);
  return Number(match[1]);
}

async function until(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function usingRedis(url: string): Promise<boolean> {
  const res = await fetch(`${url}/readyz`);
  return ((await res.json()) as { quotaStore?: string }).quotaStore === 'redis';
}

describe('Redis Cluster (REDIS_CLUSTER_NODES, three local masters)', () => {
  let cluster: TestRedisCluster;
  let lenient: TestGateway;
  let strict: TestGateway;
  let dir: string;

  beforeAll(async () => {
    cluster = await TestRedisCluster.start(3);
    dir = mkdtempSync(join(tmpdir(), 'aisbgw-cluster-config-'));
    const config = join(dir, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({ keys: { [OPERATOR_KEY]: { project: 'ClusterProject', role: 'tight' } }, roles: { tight: { limits: { 'chat:dummy': { requestMinute: 5 } } } } }),
    );
    const env = { REDIS_CLUSTER_NODES: cluster.nodesSetting, REDIS_COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS), AISBREAKER_CONFIG: config, LOG_LEVEL: 'warn' };
    // the second knows just one seed node and must find the others (and every slot's owner) itself
    const seed = cluster.nodesSetting.split(',')[0] ?? '';
    [lenient, strict] = await Promise.all([
      startGateway({ ...env, QUOTA_BACKEND_FAILURE: 'memory' }),
      startGateway({ ...env, REDIS_CLUSTER_NODES: seed, QUOTA_BACKEND_FAILURE: 'reject' }),
    ]);
    // connected to the cluster (on a busy machine that may take longer than the start waits)
    for (const gw of [lenient, strict]) await until(async () => (await usingRedis(gw.url)), 10_000, 'the gateway is connected to the cluster');
  });

  afterAll(async () => {
    await Promise.all([lenient?.close(), strict?.close()]);
    await cluster?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('admits exactly N of a global limit of N, under concurrency across two gateways', async () => {
    const token = await mint(lenient.url, { requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { requestsPerMinute: 7 } } } });
    const jti = await jtiOf(lenient.url, token);
    const results = await statuses(Array.from({ length: 24 }, (_, i) => postProcess(i % 2 ? strict.url : lenient.url, token, processBody('chat:dummy', `q${i}`))));
    expect(count(results, 200)).toBe(7);
    expect(count(results, 429)).toBe(17);

    // counted in the cluster, not in a fallback: the counter holds exactly 7 on the node of its slot
    const key = `aisbgw:{${jti}}:${jti}:g:minute`;
    const node = await cluster.nodeForKey(key);
    expect(await cluster.command(node, 'HGET', key, 's')).toBe('7');
    expect(await metric(lenient.url, 'aisbgw_quota_store_errors_total')).toBe(0);
    expect(await metric(strict.url, 'aisbgw_quota_store_errors_total')).toBe(0);
  });

  it('keeps every key of a token family (parent, child, per-client, revocation) in one hash slot', async () => {
    const parent = await mint(lenient.url, {
      requestAuthAndQuotas: { requestQuotas: { perClientRequestLimits: { requestsPerMinute: 50 }, globalRequestLimits: { requestsPerHour: 50 } } },
    });
    const rootJti = await jtiOf(lenient.url, parent);
    expect((await postProcess(lenient.url, parent, processBody('chat:dummy', 'p'))).status).toBe(200);
    const child = await mint(
      lenient.url,
      { requestAuthAndQuotas: { requestQuotas: { perClientRequestLimits: { requestsPerMinute: 2 }, globalRequestLimits: { requestsPerMinute: 10 } } }, expirationTimeSpan: '1h' },
      { Authorization: `Bearer ${parent}` },
    );
    const childJti = await jtiOf(lenient.url, child);
    expect(childJti).not.toBe(rootJti);
    const childResults = await statuses([1, 2, 3].map(() => postProcess(strict.url, child, processBody('chat:dummy', 'c'))));
    expect(childResults.sort()).toEqual([200, 200, 429]);
    const revoke = await fetch(`${strict.url}/api/v1/oauth/revoke`, { method: 'POST', body: new URLSearchParams({ token: child }) });
    expect(revoke.status).toBe(200);

    const perNode = await Promise.all(cluster.nodes.map((_, i) => cluster.keysOn(i, `*${rootJti}*`)));
    const holding = perNode.map((keys, i) => (keys.length > 0 ? i : -1)).filter((i) => i >= 0);
    expect(holding).toHaveLength(1);
    const keys = perNode[holding[0] ?? 0] ?? [];
    // parent: client minute + global hour; child: client minute + global minute + its revocation mark
    expect(keys.some((k) => k.endsWith(`${rootJti}:g:hour`))).toBe(true);
    expect(keys.some((k) => k.includes(`${rootJti}:c:`))).toBe(true);
    expect(keys.some((k) => k.includes(`${childJti}:c:`))).toBe(true);
    expect(keys).toContain(`aisbgw:{${rootJti}}:${childJti}:g:minute`);
    expect(keys).toContain(`aisbgw:{${rootJti}}:${childJti}:revoked`);
    expect(keys.length).toBeGreaterThanOrEqual(5);
    const slots = new Set(await Promise.all(keys.map((k) => cluster.slotOf(k))));
    expect(slots).toEqual(new Set([await cluster.slotOf(`{${rootJti}}`)]));
  });

  it('refuses a revoked token on every gateway sharing the cluster, and the mark expires with the token', async () => {
    const token = await mint(lenient.url, { requestAuthAndQuotas: {}, expirationTimeSpan: '1h' });
    const jti = await jtiOf(lenient.url, token);
    expect((await postProcess(strict.url, token, processBody('chat:dummy', 'before'))).status).toBe(200);
    const revoke = await fetch(`${lenient.url}/api/v1/oauth/revoke`, { method: 'POST', body: new URLSearchParams({ token }) });
    expect(await revoke.json()).toEqual({ revoked: true, jti });

    for (const url of [strict.url, lenient.url]) {
      const res = await postProcess(url, token, processBody('chat:dummy', 'after'));
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('REVOKED_API_KEY');
    }
    const mark = `aisbgw:{${jti}}:${jti}:revoked`;
    const ttl = Number(await cluster.command(await cluster.nodeForKey(mark), 'PTTL', mark));
    expect(ttl).toBeGreaterThan(3_500_000);
    expect(ttl).toBeLessThanOrEqual(3_600_000);
  });

  it('holds an operator key to exactly its per-model request limit across gateways', async () => {
    const results = await statuses(
      Array.from({ length: 16 }, (_, i) => postProcess(i % 2 ? strict.url : lenient.url, undefined, processBody('chat:dummy', `k${i}`), { 'Api-Key': OPERATOR_KEY })),
    );
    expect(count(results, 200)).toBe(5);
    expect(count(results, 429)).toBe(11);
    const key = `aisbgw:{k:${OPERATOR_KEY_ID}}:chat:dummy:r:minute`;
    expect(await cluster.command(await cluster.nodeForKey(key), 'HGET', key, 's')).toBe('5');
    // the key itself is never part of a Redis key
    const all = (await Promise.all(cluster.nodes.map((_, i) => cluster.keysOn(i, '*')))).flat();
    expect(all.some((k) => k.includes(OPERATOR_KEY))).toBe(false);
  });

  it('survives a node restart: serves per QUOTA_BACKEND_FAILURE while it is down, recovers by itself when it is back', async () => {
    const token = await mint(lenient.url, { requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { requestsPerMinute: 3 } } } });
    const jti = await jtiOf(lenient.url, token);
    const key = `aisbgw:{${jti}}:${jti}:g:minute`;
    const node = await cluster.nodeForKey(key);
    expect((await postProcess(lenient.url, token, processBody('chat:dummy', 'up'))).status).toBe(200);
    expect(await cluster.command(node, 'HGET', key, 's')).toBe('1');

    await cluster.killNode(node);

    // memory: keeps serving, within REDIS_COMMAND_TIMEOUT_MS per request, limits held per instance (from zero)
    const lenientResults: number[] = [];
    for (let i = 0; i < 4; i++) {
      const started = Date.now();
      const res = await postProcess(lenient.url, token, processBody('chat:dummy', `down${i}`));
      await res.arrayBuffer();
      expect(Date.now() - started).toBeLessThan(COMMAND_TIMEOUT_MS);
      lenientResults.push(res.status);
    }
    expect(lenientResults).toEqual([200, 200, 200, 429]);
    expect((await fetch(`${lenient.url}/readyz`)).status).toBe(200);
    expect(await metric(lenient.url, 'aisbgw_quota_store_degraded')).toBe(1);

    // reject: 503 with Retry-After, and not ready
    const started = Date.now();
    const rejected = await postProcess(strict.url, token, processBody('chat:dummy', 'down'));
    expect(Date.now() - started).toBeLessThan(COMMAND_TIMEOUT_MS);
    expect(rejected.status).toBe(503);
    expect(rejected.headers.get('retry-after')).toBe('1');
    expect(((await rejected.json()) as { error: { code: string } }).error.code).toBe('QUOTA_BACKEND_UNAVAILABLE');
    expect((await fetch(`${strict.url}/readyz`)).status).toBe(503);

    await cluster.startNode(node);
    await cluster.waitUntilHealthy();

    // ready again without any traffic: a load balancer that took it out of rotation sends none
    await until(async () => (await fetch(`${strict.url}/readyz`)).status === 200, 5000, 'the reject gateway is ready again');
    await until(async () => (await metric(lenient.url, 'aisbgw_quota_store_degraded')) === 0, 5000, 'the memory gateway left the fallback');

    // and exact again: the restarted node lost its counters, so the limit of 3 starts over, in the cluster
    const after = await statuses(Array.from({ length: 6 }, (_, i) => postProcess(strict.url, token, processBody('chat:dummy', `back${i}`))));
    expect(count(after, 200)).toBe(3);
    expect(count(after, 429)).toBe(3);
    expect(await cluster.command(node, 'HGET', key, 's')).toBe('3');
  });
});
