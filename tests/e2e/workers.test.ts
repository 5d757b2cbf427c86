import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_SECRET } from '../helpers/gateway.js';
import { GatewayProcess } from '../helpers/gateway-process.js';
import { call, mintLimited, statusOf } from '../helpers/quota-helpers.js';
import { TestRedis } from '../helpers/redis-server.js';

/** WORKERS=N: N processes of node:cluster serving one port, sharing the Redis quota store. */

const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

describe('WORKERS=2 with Redis', () => {
  let redis: TestRedis;
  let gw: GatewayProcess;
  beforeAll(async () => {
    redis = await TestRedis.start();
    gw = await GatewayProcess.start({ WORKERS: '2', REDIS_URL: redis.url });
    // the second worker may log its start a moment after the first
    const deadline = Date.now() + 10_000;
    while (gw.output.filter((l) => l.includes('aisbreaker-gateway listening')).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  });
  afterAll(async () => {
    await gw?.stop();
    await redis?.stop();
  });

  it('runs two workers on one port, and a global limit holds exactly across them', async () => {
    const listening = gw.output.filter((l) => l.includes('aisbreaker-gateway listening'));
    expect(listening).toHaveLength(2);
    expect(new Set(listening.map((l) => /"port":(\d+)/.exec(l)?.[1])).size).toBe(1);
    const token = await mintLimited(gw.url, { global: { requestsPerMinute: 20 } });
    const statuses = await Promise.all(Array.from({ length: 60 }, async (_, i) => statusOf(await call(gw.url, token, `10.0.0.${i}`))));
    expect(statuses.filter((s) => s === 200)).toHaveLength(20);
    expect(statuses.filter((s) => s === 429)).toHaveLength(40);
  });

  it('stops every worker on SIGTERM, and exits 0', async () => {
    expect(await gw.stop('SIGTERM')).toBe(0);
    expect(gw.output.filter((l) => l.includes('shutting down'))).toHaveLength(2);
  });
});

describe('WORKERS refused', () => {
  const start = (env: Record<string, string>): { status: number | null; stderr: string } => {
    const result = spawnSync(process.execPath, [MAIN], { env: { PATH: process.env.PATH ?? '', AISBREAKER_SECRET: TEST_SECRET, PORT: '0', HOST: '127.0.0.1', ...env }, encoding: 'utf8', timeout: 10_000 });
    return { status: result.status, stderr: result.stderr };
  };

  it('with the memory store (each process would count its own quotas), or a value that is no process count', () => {
    const memory = start({ WORKERS: '2' });
    expect(memory.status).toBe(2);
    expect(memory.stderr).toContain('config error: WORKERS: 2 processes need a shared quota store (REDIS_URL or REDIS_CLUSTER_NODES)');
    for (const value of ['0', 'two', '65']) {
      const bad = start({ WORKERS: value });
      expect(bad.status).toBe(2);
      expect(bad.stderr).toContain(`config error: WORKERS: "${value}" is not a number of processes (1-64)`);
    }
  });
});
