import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayProcess } from '../helpers/gateway-process.js';
import { mint, processBody } from '../helpers/gateway.js';
import { TestNginx } from '../helpers/nginx.js';
import { TestRedis } from '../helpers/redis-server.js';

/**
 * The compose setup without docker: the shipped nginx config (deploy/nginx/gateway.conf) in a real
 * nginx on loopback, in front of three gateway processes (dist/main.js) sharing one Redis, with
 * the settings compose.yaml gives them.
 */

interface Answer {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
  /** ms after the request was sent at which each body chunk arrived */
  chunkTimes: number[];
}

/** One request over a new connection from `localAddress` (any 127.x.y.z is this machine). */
function send(url: string, path: string, options: { token?: string; body?: string; localAddress?: string } = {}): Promise<Answer> {
  const target = new URL(path, url);
  const headers = { 'Content-Type': 'application/json', ...(options.token ? { Authorization: `Bearer ${options.token}` } : {}) };
  const sent = Date.now();
  return new Promise((resolve, reject) => {
    const req = request(
      { host: target.hostname, port: target.port, path: target.pathname, method: options.body === undefined ? 'GET' : 'POST', headers, localAddress: options.localAddress ?? '127.0.0.1', agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        const chunkTimes: number[] = [];
        res.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          chunkTimes.push(Date.now() - sent);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers, chunkTimes }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

function servedBy(gateway: GatewayProcess, path: string): number {
  return gateway.output.filter((line) => line.includes(`"path":"${path}"`) && line.includes('"msg":"request"')).length;
}

describe('nginx (deploy/nginx/gateway.conf) in front of three instances and one Redis', { timeout: 60_000 }, () => {
  let redis: TestRedis;
  let gateways: GatewayProcess[];
  let nginx: TestNginx;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'aisbgw-nginx-front-'));
    const configFile = join(dir, 'config.json');
    // a slow built-in service: its stream takes ~1.5 s, so buffering by the proxy would show
    writeFileSync(configFile, JSON.stringify({ services: { 'chat:slow': { kind: 'dummy', streamDelayMs: 150 } } }));
    redis = await TestRedis.start();
    // as compose.yaml sets them: one Redis, nginx is the one trusted hop
    const env = { REDIS_URL: redis.url, TRUST_PROXY: '1', QUOTA_BACKEND_FAILURE: 'memory', AISBREAKER_CONFIG: configFile };
    gateways = await Promise.all([1, 2, 3].map(() => GatewayProcess.start(env)));
    nginx = await TestNginx.start(gateways.map((g) => new URL(g.url).host));
  });

  afterAll(async () => {
    await nginx?.stop();
    await Promise.all((gateways ?? []).map((g) => g.stop()));
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('passes nginx -t with the shipped directives', () => {
    const check = TestNginx.check(gateways.map((g) => new URL(g.url).host));
    expect(check.output).toContain('test is successful');
    expect(check.code).toBe(0);
  });

  it('admits exactly the global limit across the three instances, each serving some', async () => {
    const token = await mint(nginx.url, { requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { requestsPerMinute: 12 } } } });
    const body = processBody('chat:dummy', 'Hi');
    const answers = await Promise.all(Array.from({ length: 30 }, () => send(nginx.url, '/api/v1/process', { token, body })));
    expect(answers.filter((a) => a.status === 200)).toHaveLength(12);
    expect(answers.filter((a) => a.status === 429)).toHaveLength(18);
    const refused = JSON.parse(answers.find((a) => a.status === 429)?.body ?? '{}') as { error?: { code?: string; details?: { scope?: string } } };
    expect(refused.error).toMatchObject({ code: 'RATE_LIMITED', details: { scope: 'global' } });
    // round robin: every instance took part in the decision
    await new Promise((r) => setTimeout(r, 200));
    for (const gateway of gateways) expect(servedBy(gateway, '/api/v1/process')).toBeGreaterThan(0);
  });

  it('counts per-client quotas by the client address nginx forwards (TRUST_PROXY=1)', async () => {
    const token = await mint(nginx.url, { requestAuthAndQuotas: { requestQuotas: { perClientRequestLimits: { requestsPerMinute: 2 } } } });
    const body = processBody('chat:dummy', 'Hi');
    const from = (localAddress: string) => send(nginx.url, '/api/v1/process', { token, body, localAddress });
    const first = [await from('127.0.0.2'), await from('127.0.0.2'), await from('127.0.0.2')];
    expect(first.map((a) => a.status)).toEqual([200, 200, 429]);
    // another client is counted on its own, though nginx connects to the instances from one address
    expect((await from('127.0.0.3')).status).toBe(200);
  });

  it('passes a stream through unbuffered: the first event arrives long before the last', async () => {
    const token = await mint(nginx.url);
    const answer = await send(nginx.url, '/api/v1/process', { token, body: processBody('chat:slow', 'Hello', { stream: true }) });
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(answer.body).toContain('event: progress');
    expect(answer.body).toContain('event: final');
    const first = answer.chunkTimes[0] ?? 0;
    const last = answer.chunkTimes.at(-1) ?? 0;
    // the words come 150 ms apart: a buffering proxy would deliver them in one piece at the end
    expect(answer.chunkTimes.length).toBeGreaterThan(5);
    expect(last - first, `chunks at ${answer.chunkTimes.join(', ')} ms`).toBeGreaterThan(800);
  });

  it('keeps the client Host: a token minted through nginx serves at an instance under the same host', async () => {
    const token = await mint(nginx.url);
    // bound to 127.0.0.1, the host the client asked nginx for (another Host would make this a 401 WRONG_HOST)
    const answer = await send(gateways[0]?.url ?? '', '/api/v1/process', { token, body: processBody('chat:dummy', 'Hi') });
    expect(answer.status).toBe(200);
  });

  it('keeps /metrics on the inside', async () => {
    expect((await fetch(`${nginx.url}/metrics`)).status).toBe(404);
    expect((await fetch(`${gateways[0]?.url}/metrics`)).status).toBe(200);
  });
});
