import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayProcess } from '../helpers/gateway-process.js';
import { mint, processBody } from '../helpers/gateway.js';
import { TestRedisCluster } from '../helpers/redis-cluster.js';
import { TestRedis } from '../helpers/redis-server.js';
import { RoundRobinProxy } from '../helpers/round-robin.js';

/**
 * Many instances: three gateway processes (dist/main.js: run `npm run build` first) behind a
 * round-robin proxy, sharing one Redis, and then a Redis Cluster. Global quotas, per-client quotas,
 * revocation and operator-key limits must be exact whichever instance serves a request.
 */

if (!existsSync(fileURLToPath(new URL('../../dist/main.js', import.meta.url)))) {
  throw new Error('dist/main.js is missing: run `npm run build` before these tests');
}

const INSTANCES = 3;
const OPERATOR_KEY = 'scale-out-operator-key-0123456789abcd';
const OPERATOR_KEY_ID = createHash('sha256').update(OPERATOR_KEY).digest('hex').slice(0, 32);

interface Answer {
  status: number;
  body: string;
}

/** One request over a new connection from `localAddress` (any 127.x.y.z is this machine's loopback). */
function send(url: string, path: string, options: { token?: string; headers?: Record<string, string>; body?: string; localAddress?: string } = {}): Promise<Answer> {
  const target = new URL(path, url);
  const headers: Record<string, string> = { 'Content-Type': 'application/json', ...(options.token ? { Authorization: `Bearer ${options.token}` } : {}), ...options.headers };
  return new Promise((resolve, reject) => {
    const req = request(
      { host: target.hostname, port: target.port, path: target.pathname, method: options.body === undefined ? 'GET' : 'POST', headers, localAddress: options.localAddress ?? '127.0.0.1', agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

function count(answers: Answer[], status: number): number {
  return answers.filter((a) => a.status === status).length;
}

function codeOf(answer: Answer): string | undefined {
  return (JSON.parse(answer.body) as { error?: { code?: string } }).error?.code;
}

interface Backend {
  name: string;
  start(): Promise<{ env: Record<string, string>; read(key: string): Promise<string | null>; stop(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: 'one Redis (REDIS_URL)',
    start: async () => {
      const redis = await TestRedis.start();
      const client = redis.client();
      return {
        env: { REDIS_URL: redis.url },
        read: (key) => client.hget(key, 's'),
        stop: async () => {
          client.disconnect();
          await redis.stop();
        },
      };
    },
  },
  {
    name: 'a Redis Cluster of three masters (REDIS_CLUSTER_NODES)',
    start: async () => {
      const cluster = await TestRedisCluster.start(3);
      return {
        env: { REDIS_CLUSTER_NODES: cluster.nodesSetting },
        read: async (key) => (await cluster.command(await cluster.nodeForKey(key), 'HGET', key, 's')) as string | null,
        stop: () => cluster.stop(),
      };
    },
  },
];

describe.each(backends)('three gateway processes behind a round-robin proxy, on $name', (backend) => {
  let store: Awaited<ReturnType<Backend['start']>>;
  let gateways: GatewayProcess[] = [];
  let proxy: RoundRobinProxy;
  let dir: string;

  beforeAll(async () => {
    store = await backend.start();
    dir = mkdtempSync(join(tmpdir(), 'aisbgw-scale-'));
    const config = join(dir, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({
        keys: { [OPERATOR_KEY]: { project: 'ScaleOut', role: 'limited' } },
        roles: { limited: { limits: { 'chat:dummy': { requestMinute: 6 }, 'chat:echo': { requestHour: 4 } } } },
      }),
    );
    // one hop in front (the proxy): the client is the address the proxy appended, nothing before it
    const env = { ...store.env, AISBREAKER_CONFIG: config, TRUST_PROXY: '1', API_MINT_LIMITS: '5/minute', API_AUTH_FAILURE_LIMITS: '6/minute' };
    gateways = await Promise.all(Array.from({ length: INSTANCES }, () => GatewayProcess.start(env)));
    proxy = await RoundRobinProxy.start(gateways.map((g) => g.url));
    // every instance connected to the store (on a busy machine that may take longer than the start waits)
    const deadline = Date.now() + 10_000;
    for (const gw of gateways) {
      while (((JSON.parse((await send(gw.url, '/readyz')).body) as { quotaStore?: string }).quotaStore ?? '') !== 'redis') {
        if (Date.now() > deadline) throw new Error(`${gw.url} did not connect to ${backend.name}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  });

  afterAll(async () => {
    await proxy?.close();
    const codes = await Promise.all(gateways.map((g) => g.stop()));
    await store?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    expect(codes).toEqual(gateways.map(() => 0));
  });

  it('spreads requests over every instance', async () => {
    const before = [...proxy.served];
    const pings = await Promise.all(Array.from({ length: 6 }, () => send(proxy.url, '/api/v1/ping')));
    expect(pings.map((p) => p.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(proxy.served.map((n, i) => n - (before[i] ?? 0))).toEqual([2, 2, 2]);
  });

  it('admits exactly N of a global limit of N under concurrency, whichever instance serves', async () => {
    const token = await mint(proxy.url, { requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { requestsPerMinute: 10 } } } });
    const answers = await Promise.all(
      Array.from({ length: 33 }, (_, i) => send(proxy.url, '/api/v1/process', { token, body: processBody('chat:dummy', `g${i}`), localAddress: `127.0.0.${1 + (i % 3)}` })),
    );
    expect(count(answers, 200)).toBe(10);
    expect(count(answers, 429)).toBe(23);
    const denied = answers.find((a) => a.status === 429);
    expect(denied && JSON.parse(denied.body)).toMatchObject({ error: { code: 'RATE_LIMITED', details: { scope: 'global', window: 'minute', limit: 10 } } });
  });

  it('counts per-client limits by the address the proxy saw, not by what the client claims', async () => {
    const token = await mint(proxy.url, { requestAuthAndQuotas: { requestQuotas: { perClientRequestLimits: { requestsPerMinute: 4 } } } });
    // each client sends 12 requests, each claiming another address in its own X-Forwarded-For
    const clients = ['127.0.0.1', '127.0.0.2'];
    const answers = await Promise.all(
      clients.map((localAddress) =>
        Promise.all(
          Array.from({ length: 12 }, (_, i) =>
            send(proxy.url, '/api/v1/process', { token, body: processBody('chat:dummy', `c${i}`), localAddress, headers: { 'X-Forwarded-For': `203.0.113.${i}` } }),
          ),
        ),
      ),
    );
    for (const perClient of answers) {
      expect(count(perClient, 200)).toBe(4);
      expect(count(perClient, 429)).toBe(8);
      expect(JSON.parse(perClient.find((a) => a.status === 429)?.body ?? '{}')).toMatchObject({ error: { details: { scope: 'client', limit: 4 } } });
    }
  });

  it('refuses a token on every instance at once after it was revoked through one of them', async () => {
    const token = await mint(proxy.url, { requestAuthAndQuotas: {}, expirationTimeSpan: '1h' });
    const warm = await Promise.all(gateways.map((g) => send(g.url, '/api/v1/process', { token, body: processBody('chat:dummy', 'before') })));
    expect(warm.map((a) => a.status)).toEqual([200, 200, 200]);

    const [first, ...others] = gateways;
    const revoked = await send(first?.url ?? '', '/api/v1/oauth/revoke', { body: JSON.stringify({ token }) });
    expect(revoked.status).toBe(200);
    expect(JSON.parse(revoked.body)).toMatchObject({ revoked: true });
    const revokedAt = Date.now();
    const after = await Promise.all(others.map((g) => send(g.url, '/api/v1/process', { token, body: processBody('chat:dummy', 'after') })));
    expect(Date.now() - revokedAt).toBeLessThan(1000);
    expect(after.map((a) => [a.status, codeOf(a)])).toEqual(others.map(() => [401, 'REVOKED_API_KEY']));
    // and through the proxy, whichever instance answers
    const viaProxy = await Promise.all(Array.from({ length: 3 }, () => send(proxy.url, '/api/v1/process', { token, body: processBody('chat:dummy', 'after') })));
    expect(viaProxy.map((a) => a.status)).toEqual([401, 401, 401]);
  });

  it('limits minting and refused credentials per client address exactly across instances (API_MINT_LIMITS, API_AUTH_FAILURE_LIMITS)', async () => {
    const mintBody = JSON.stringify({ requestAuthAndQuotas: {} });
    const mints = await Promise.all(
      ['127.0.0.9', '127.0.0.10'].map((localAddress) => Promise.all(Array.from({ length: 9 }, () => send(proxy.url, '/api/v1/oauth/token', { body: mintBody, localAddress })))),
    );
    for (const perClient of mints) {
      expect(count(perClient, 200)).toBe(5);
      expect(count(perClient, 429)).toBe(4);
      expect(JSON.parse(perClient.find((a) => a.status === 429)?.body ?? '{}')).toMatchObject({ error: { details: { scope: 'api', window: 'minute', limit: 5 } } });
    }
    const refused = await Promise.all(
      Array.from({ length: 10 }, (_, i) => send(proxy.url, '/api/v1/process', { token: `not-a-key-of-this-server-${i}-0123456789`, body: processBody('chat:dummy', 'x'), localAddress: '127.0.0.11' })),
    );
    expect(count(refused, 401)).toBe(6);
    expect(count(refused, 429)).toBe(4);
  });

  it('holds an operator key to exactly its per-model request limits across instances', async () => {
    const request = (model: string, i: number): Promise<Answer> =>
      send(proxy.url, '/api/v1/process', { body: processBody(model, `k${i}`), headers: i % 2 ? { 'Api-Key': OPERATOR_KEY } : { Authorization: `Bearer ${OPERATOR_KEY}` } });
    const [dummy, echo] = await Promise.all([
      Promise.all(Array.from({ length: 20 }, (_, i) => request('chat:dummy', i))),
      Promise.all(Array.from({ length: 11 }, (_, i) => request('chat:echo', i))),
    ]);
    expect(count(dummy, 200)).toBe(6);
    expect(count(dummy, 429)).toBe(14);
    expect(count(echo, 200)).toBe(4);
    expect(count(echo, 429)).toBe(7);
    expect(await store.read(`aisbgw:{k:${OPERATOR_KEY_ID}}:chat:dummy:r:minute`)).toBe('6');
    expect(await store.read(`aisbgw:{k:${OPERATOR_KEY_ID}}:chat:echo:r:hour`)).toBe('4');
  });
});
