/**
 * `npm run bench`: end-to-end throughput and latency of the gateway beside baselines measured in
 * the same run, against the same mock upstream, with the same load generator and connections;
 * then micro-benchmarks of the hot path. Prints a table and JSON (also written to
 * bench/results/latest.json). Loopback only, bounded in time (about a minute and a half).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TestRedis } from '../tests/helpers/redis-server.js';
import { generator, runLoad, type LoadResult } from './load.js';
import { runMicro } from './micro.js';
import { startProcess, tsxArgs, type BenchProcess } from './processes.js';
import { runOpenStreams } from './streams.js';

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const DURATION_SEC = Number(process.env.BENCH_DURATION_SEC ?? 6);
const WARMUP_SEC = 1;
const SECRET = 'bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url));
const GATEWAY_MAIN = here('../dist/main.js');

const chatBody = (stream: boolean): string =>
  JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello to the benchmark.' }], ...(stream ? { stream: true } : {}) });

interface Row extends LoadResult {
  name: string;
  peakRssMb: number;
}

async function measure(name: string, server: BenchProcess, path: string, headers: Record<string, string>, body: string): Promise<Row> {
  const spec = { url: `http://127.0.0.1:${server.port}${path}`, headers: { 'content-type': 'application/json', ...headers }, body, connections: CONNECTIONS };
  await runLoad({ ...spec, durationSec: WARMUP_SEC });
  const result = await runLoad({ ...spec, durationSec: DURATION_SEC });
  const row = { name, ...result, peakRssMb: server.peakRssMb() };
  console.error(`${name}: ${row.requestsPerSec.toFixed(0)} req/s, p50 ${row.p50Ms.toFixed(2)} ms, p99 ${row.p99Ms.toFixed(2)} ms, errors ${row.errors}, non-2xx ${row.non2xx}`);
  return row;
}

async function mintBenchToken(gatewayPort: number): Promise<string> {
  const windows = { requestsPerMinute: 1_000_000_000, requestsPerHour: 1_000_000_000, requestsPerDay: 1_000_000_000 };
  const res = await fetch(`http://127.0.0.1:${gatewayPort}/api/v1/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      requestAuthAndQuotas: {
        requestQuotas: { perClientRequestLimits: windows, globalRequestLimits: windows },
        serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: 'sk-bench' }],
      },
      expirationTimeSpan: '1h',
    }),
  });
  if (!res.ok) throw new Error(`mint failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { access_token: string }).access_token;
}

async function withServer<T>(server: Promise<BenchProcess>, use: (s: BenchProcess) => Promise<T>): Promise<T> {
  const s = await server;
  try {
    return await use(s);
  } finally {
    await s.stop();
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  const redis = await TestRedis.start();
  const mock = await startProcess(tsxArgs(here('./servers/mock-upstream.ts')));
  const upstream = `http://127.0.0.1:${mock.port}`;
  const gatewayEnv = (extra: Record<string, string>): Record<string, string> => ({
    AISBREAKER_SECRET: SECRET,
    HOST: '127.0.0.1',
    PORT: '0',
    OPENAI_BASE_URL: `${upstream}/v1`,
    API_MINT_LIMITS: 'off',
    ...extra,
  });
  const rows: Row[] = [];
  try {
    console.error(`load generator: ${generator}, ${CONNECTIONS} connections, ${DURATION_SEC} s per run (+${WARMUP_SEC} s warm-up)`);
    rows.push(await measure('1 mock upstream (direct)', mock, '/v1/chat/completions', { authorization: 'Bearer sk-bench' }, chatBody(false)));
    rows.push(
      await withServer(startProcess(tsxArgs(here('./servers/bare-proxy.ts')), { UPSTREAM_URL: upstream }), (s) =>
        measure('2 node:http + undici proxy', s, '/v1/chat/completions', {}, chatBody(false)),
      ),
    );
    rows.push(
      await withServer(startProcess(tsxArgs(here('./servers/express-proxy.ts')), { UPSTREAM_URL: upstream }), (s) =>
        measure('3 minimal Express + undici proxy', s, '/v1/chat/completions', {}, chatBody(false)),
      ),
    );
    rows.push(
      await withServer(startProcess([GATEWAY_MAIN], gatewayEnv({})), async (s) => {
        const token = await mintBenchToken(s.port);
        return measure('4 gateway, memory store', s, '/v1/chat/completions', { authorization: `Bearer ${token}` }, chatBody(false));
      }),
    );
    rows.push(
      await withServer(startProcess([GATEWAY_MAIN], gatewayEnv({ REDIS_URL: redis.url })), async (s) => {
        const token = await mintBenchToken(s.port);
        const auth = { authorization: `Bearer ${token}` };
        rows.push(await measure('5 gateway, Redis store', s, '/v1/chat/completions', auth, chatBody(false)));
        return measure('6 gateway, Redis store, streaming', s, '/v1/chat/completions', auth, chatBody(true));
      }),
    );
    // 1,000 streams open at once, each delivered slowly by the upstream: memory must stay bounded
    const slowMock = await startProcess(tsxArgs(here('./servers/mock-upstream.ts')), { STREAM_CHUNK_DELAY_MS: '200', STREAM_CHUNKS: '10' });
    const streams = await withServer(
      startProcess([GATEWAY_MAIN], gatewayEnv({ REDIS_URL: redis.url, OPENAI_BASE_URL: `http://127.0.0.1:${slowMock.port}/v1` })),
      async (s) => runOpenStreams(s, await mintBenchToken(s.port), chatBody(true), 1000),
    );
    await slowMock.stop();

    const micro = await runMicro(redis.url);
    report(rows, micro, streams, (Date.now() - started) / 1000);
  } finally {
    await mock.stop();
    await redis.stop();
  }
}

function report(rows: Row[], micro: Awaited<ReturnType<typeof runMicro>>, streams: Awaited<ReturnType<typeof runOpenStreams>>, seconds: number): void {
  const byNumber = (n: string): Row => {
    const row = rows.find((r) => r.name.startsWith(n));
    if (!row) throw new Error(`no row ${n}`);
    return row;
  };
  const [r2, r3, r4, r5] = ['2', '3', '4', '5'].map(byNumber) as [Row, Row, Row, Row];
  const ratios = {
    'gateway memory / minimal Express (4)/(3)': r4.requestsPerSec / r3.requestsPerSec,
    'gateway Redis / minimal Express (5)/(3)': r5.requestsPerSec / r3.requestsPerSec,
    'gateway Redis / bare node:http (5)/(2)': r5.requestsPerSec / r2.requestsPerSec,
    'added p50 of (5) over (3), ms': r5.p50Ms - r3.p50Ms,
    'Redis quota check / six rate-limiter-flexible calls, 64 concurrent': micro.quotaRedis64PerSec / micro.rlfSixCallsRedis64PerSec,
  };
  console.log(`\naisbreaker-gateway benchmark (${generator}, ${CONNECTIONS} connections, ${DURATION_SEC} s per run, ${seconds.toFixed(0)} s in all)\n`);
  console.log('| scenario | req/s | p50 ms | p99 ms | peak RSS MB | errors | non-2xx |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(`| ${r.name} | ${r.requestsPerSec.toFixed(0)} | ${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${r.peakRssMb.toFixed(0)} | ${r.errors} | ${r.non2xx} |`);
  }
  console.log('\n| ratio | value |\n|---|---:|');
  for (const [name, value] of Object.entries(ratios)) console.log(`| ${name} | ${value.toFixed(2)} |`);
  console.log('\n| micro-benchmark | ops/s |\n|---|---:|');
  for (const [name, value] of Object.entries(micro)) console.log(`| ${name} | ${value.toFixed(0)} |`);
  console.log(`\n1,000 concurrent streams: ${streams.completed} completed, ${streams.failed} failed, slowest ${streams.slowestMs.toFixed(0)} ms, gateway peak RSS ${streams.peakRssMb.toFixed(0)} MB`);
  const json = { generator, connections: CONNECTIONS, durationSec: DURATION_SEC, rows, ratios, micro, streams };
  console.log('\n' + JSON.stringify(json));
  mkdirSync(here('./results'), { recursive: true });
  writeFileSync(here('./results/latest.json'), JSON.stringify(json, null, 2));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
