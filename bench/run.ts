/**
 * `npm run bench`: end-to-end throughput and latency of the gateway beside baselines measured in
 * the same run, against the same mock upstream, with the same load generator and connections;
 * then micro-benchmarks of the hot path. Prints a table and JSON (also written to
 * bench/results/latest.json). Loopback only, bounded in time (about a minute and a half).
 * The proxied scenarios run in interleaved rounds, so a machine whose speed drifts slows them alike.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TestRedis } from '../tests/helpers/redis-server.js';
import { generator, runLoad, type LoadResult } from './load.js';
import { runMicro } from './micro.js';
import { startProcess, tsxArgs, type BenchProcess } from './processes.js';
import { runOpenStreams } from './streams.js';

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const DURATION_SEC = Number(process.env.BENCH_DURATION_SEC ?? 3);
/** the proxied scenarios run this many times, interleaved, and each reports its median run */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** the gateway has more code to compile than the baselines: a longer warm-up keeps round 1 fair */
const WARMUP_SEC = 2;
const SECRET = 'bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url));
const GATEWAY_MAIN = here('../dist/main.js');

const chatBody = (stream: boolean): string =>
  JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello to the benchmark.' }], ...(stream ? { stream: true } : {}) });

/** A run, with the serving process's CPU time per request served (the figure that holds still on a shared machine). */
interface Measured extends LoadResult {
  cpuUsPerRequest: number;
}

interface Row extends Measured {
  name: string;
  peakRssMb: number;
  /** every round, in order: ratios are taken round by round, between runs made side by side */
  rounds: Measured[];
}

/** One scenario: a server, and what to send it. */
interface Scenario {
  name: string;
  server: BenchProcess;
  headers: Record<string, string>;
  body: string;
}

async function run(scenario: Scenario, durationSec: number): Promise<Measured> {
  const spec = { url: `http://127.0.0.1:${scenario.server.port}/v1/chat/completions`, headers: { 'content-type': 'application/json', ...scenario.headers }, body: scenario.body, connections: CONNECTIONS };
  const cpuBefore = scenario.server.cpuMs();
  const result = await runLoad({ ...spec, durationSec });
  const served = result.requestsPerSec * durationSec;
  return { ...result, cpuUsPerRequest: served > 0 ? ((scenario.server.cpuMs() - cpuBefore) * 1000) / served : Number.NaN };
}

/**
 * Every scenario warmed up, then measured ROUNDS times in turn, so that a machine whose speed
 * drifts (a shared VM) slows all of them alike; each row is the median round by requests/s.
 */
async function measureInterleaved(scenarios: Scenario[]): Promise<Row[]> {
  for (const scenario of scenarios) await run(scenario, WARMUP_SEC);
  const runs = new Map<Scenario, Measured[]>(scenarios.map((s) => [s, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const scenario of scenarios) {
      const result = await run(scenario, DURATION_SEC);
      runs.get(scenario)?.push(result);
      console.error(`round ${round + 1} ${scenario.name}: ${result.requestsPerSec.toFixed(0)} req/s, ${result.cpuUsPerRequest.toFixed(0)} us CPU/request, p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms, errors ${result.errors}, non-2xx ${result.non2xx}`);
    }
  }
  return scenarios.map((scenario) => {
    const sorted = [...(runs.get(scenario) ?? [])].sort((a, b) => a.requestsPerSec - b.requestsPerSec);
    const median = sorted[Math.floor(sorted.length / 2)] as Measured;
    const errors = sorted.reduce((sum, r) => sum + r.errors, 0);
    const non2xx = sorted.reduce((sum, r) => sum + r.non2xx, 0);
    return { name: scenario.name, ...median, errors, non2xx, peakRssMb: scenario.server.peakRssMb(), rounds: runs.get(scenario) ?? [] };
  });
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
  const servers: BenchProcess[] = [];
  const serve = async (server: Promise<BenchProcess>): Promise<BenchProcess> => {
    const s = await server;
    servers.push(s);
    return s;
  };
  try {
    console.error(`load generator: ${generator}, ${CONNECTIONS} connections, ${ROUNDS} rounds of ${DURATION_SEC} s per scenario (+${WARMUP_SEC} s warm-up)`);
    const bare = await serve(startProcess(tsxArgs(here('./servers/bare-proxy.ts')), { UPSTREAM_URL: upstream }));
    const minimal = await serve(startProcess(tsxArgs(here('./servers/express-proxy.ts')), { UPSTREAM_URL: upstream }));
    const gatewayMemory = await serve(startProcess([GATEWAY_MAIN], gatewayEnv({})));
    const gatewayRedis = await serve(startProcess([GATEWAY_MAIN], gatewayEnv({ REDIS_URL: redis.url })));
    const auth = async (gateway: BenchProcess): Promise<Record<string, string>> => ({ authorization: `Bearer ${await mintBenchToken(gateway.port)}` });
    const redisAuth = await auth(gatewayRedis);
    const rows = await measureInterleaved([
      { name: '1 mock upstream (direct)', server: mock, headers: { authorization: 'Bearer sk-bench' }, body: chatBody(false) },
      { name: '2 node:http + undici proxy', server: bare, headers: {}, body: chatBody(false) },
      { name: '3 minimal Express + undici proxy', server: minimal, headers: {}, body: chatBody(false) },
      { name: '3s minimal Express + undici proxy, streaming', server: minimal, headers: {}, body: chatBody(true) },
      { name: '4 gateway, memory store', server: gatewayMemory, headers: await auth(gatewayMemory), body: chatBody(false) },
      { name: '5 gateway, Redis store', server: gatewayRedis, headers: redisAuth, body: chatBody(false) },
      { name: '6 gateway, Redis store, streaming', server: gatewayRedis, headers: redisAuth, body: chatBody(true) },
    ]);
    await Promise.all(servers.splice(0).map((s) => s.stop()));

    // 1,000 streams open at once, each delivered slowly by the upstream: memory must stay bounded
    const slowMock = await serve(startProcess(tsxArgs(here('./servers/mock-upstream.ts')), { STREAM_CHUNK_DELAY_MS: '200', STREAM_CHUNKS: '10' }));
    const streamGateway = await serve(startProcess([GATEWAY_MAIN], gatewayEnv({ REDIS_URL: redis.url, OPENAI_BASE_URL: `http://127.0.0.1:${slowMock.port}/v1` })));
    const streams = await runOpenStreams(streamGateway, await mintBenchToken(streamGateway.port), chatBody(true), 1000);
    await Promise.all(servers.splice(0).map((s) => s.stop()));

    const micro = await runMicro(redis.url);
    report(rows, micro, streams, (Date.now() - started) / 1000);
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
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
  const [r2, r3, r3s, r4, r5, r6] = ['2 ', '3 ', '3s', '4', '5', '6'].map(byNumber) as [Row, Row, Row, Row, Row, Row];
  /** the median over rounds of a figure computed from the runs of one round */
  const perRound = (figure: (round: number) => number): number => {
    const values = r3.rounds.map((_, round) => figure(round)).sort((a, b) => a - b);
    return values[Math.floor(values.length / 2)] ?? Number.NaN;
  };
  const rps = (row: Row, round: number): number => row.rounds[round]?.requestsPerSec ?? Number.NaN;
  const cpu = (row: Row, round: number): number => row.rounds[round]?.cpuUsPerRequest ?? Number.NaN;
  const ratios = {
    'CPU/request: gateway memory / minimal Express (4)/(3)': perRound((i) => cpu(r4, i) / cpu(r3, i)),
    'CPU/request: gateway Redis / minimal Express (5)/(3)': perRound((i) => cpu(r5, i) / cpu(r3, i)),
    'CPU/request: gateway Redis streaming / Express streaming (6)/(3s)': perRound((i) => cpu(r6, i) / cpu(r3s, i)),
    'gateway memory / minimal Express (4)/(3)': perRound((i) => rps(r4, i) / rps(r3, i)),
    'gateway Redis / minimal Express (5)/(3)': perRound((i) => rps(r5, i) / rps(r3, i)),
    'gateway Redis / bare node:http (5)/(2)': perRound((i) => rps(r5, i) / rps(r2, i)),
    'added p50 of (5) over (3), ms': perRound((i) => (r5.rounds[i]?.p50Ms ?? Number.NaN) - (r3.rounds[i]?.p50Ms ?? Number.NaN)),
    'Redis quota check / six rate-limiter-flexible calls, 64 concurrent': micro.quotaRedis64PerSec / micro.rlfSixCallsRedis64PerSec,
  };
  console.log(`\naisbreaker-gateway benchmark (${generator}, ${CONNECTIONS} connections, median of ${ROUNDS} interleaved ${DURATION_SEC} s runs per scenario, ${seconds.toFixed(0)} s in all)\n`);
  console.log('| scenario | req/s | CPU us/request | p50 ms | p99 ms | peak RSS MB | errors | non-2xx |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(`| ${r.name} | ${r.requestsPerSec.toFixed(0)} | ${r.cpuUsPerRequest.toFixed(0)} | ${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${r.peakRssMb.toFixed(0)} | ${r.errors} | ${r.non2xx} |`);
  }
  console.log('\n| ratio (median of the rounds\' ratios) | value |\n|---|---:|');
  for (const [name, value] of Object.entries(ratios)) console.log(`| ${name} | ${value.toFixed(2)} |`);
  console.log('\n| micro-benchmark | ops/s |\n|---|---:|');
  for (const [name, value] of Object.entries(micro)) console.log(`| ${name} | ${value.toFixed(0)} |`);
  console.log(`\n1,000 concurrent streams: ${streams.completed} completed, ${streams.failed} failed, slowest ${streams.slowestMs.toFixed(0)} ms, gateway peak RSS ${streams.peakRssMb.toFixed(0)} MB`);
  const json = { generator, connections: CONNECTIONS, durationSec: DURATION_SEC, rounds: ROUNDS, rows, ratios, micro, streams };
  console.log('\n' + JSON.stringify(json));
  mkdirSync(here('./results'), { recursive: true });
  writeFileSync(here('./results/latest.json'), JSON.stringify(json, null, 2));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
