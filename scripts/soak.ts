/**
 * `npm run soak`: mixed traffic against an in-process gateway on 127.0.0.1 for a bounded time and
 * request count, reporting errors, latency drift (first vs last interval p50/p99) and memory
 * growth (RSS, heap after GC), plus the handles, sockets and timers left once everything closed.
 * Prints a table, then the report as JSON (also to --json=<file>).
 *
 *   npm run soak -- --duration=3m --requests=200000 --concurrency=16
 *   SOAK_DURATION=60s SOAK_REQUESTS=50000 npm run soak
 *   npm run soak -- --redis=redis://127.0.0.1:6390   (a loopback Redis of your own)
 *
 * Traffic: minting, /api/v1/process (JSON and streamed, chat:dummy), /v1/chat/completions
 * (JSON and streamed, chat:echo), tokeninfo, altered tokens (401), an exhausted token (429), and
 * streams the client abandons after the first event (a slow chat:dummy of the soak's own config).
 * Anything else, a transport error or a 5xx counts as an error.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import ms from 'ms';
import { Agent, fetch } from 'undici';
import { createGateway } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { Metrics } from '../src/metrics.js';

export const SOAK_SECRET = 'soak-secret-0123456789-abcdefghijklmnopqrstuvwxyz';

export type TrafficKind = 'mint' | 'process' | 'process-stream' | 'chat' | 'chat-stream' | 'tokeninfo' | 'bad-token' | 'rate-limited' | 'abandoned-stream';

/** share of each kind in the mix */
const MIX: [TrafficKind, number][] = [
  ['mint', 10],
  ['process', 25],
  ['process-stream', 15],
  ['chat', 10],
  ['chat-stream', 5],
  ['tokeninfo', 15],
  ['bad-token', 10],
  ['rate-limited', 10],
  ['abandoned-stream', 5],
];

const EXPECTED: Record<TrafficKind, number> = {
  mint: 200,
  process: 200,
  'process-stream': 200,
  chat: 200,
  'chat-stream': 200,
  tokeninfo: 200,
  'bad-token': 401,
  'rate-limited': 429,
  'abandoned-stream': 200,
};

export interface SoakOptions {
  durationMs: number;
  maxRequests: number;
  concurrency: number;
  /** how many equal intervals the run is cut into for the drift figures */
  intervals?: number;
  /** a loopback Redis URL, or none (memory quotas) */
  redisUrl?: string;
  /** extra gateway settings (e.g. an admin key) */
  env?: Record<string, string>;
  /** a secret to put into every minted token, as a real client would */
  serviceSecret?: string;
  /** receives every gateway log line */
  onLog?: (line: string) => void;
  /** receives every response body (and the kind that produced it) */
  onResponse?: (kind: TrafficKind, status: number, body: string) => void;
  /** progress lines (the CLI prints them to stderr) */
  onProgress?: (line: string) => void;
}

export interface IntervalStats {
  index: number;
  requests: number;
  p50Ms: number;
  p99Ms: number;
}

export interface SoakReport {
  durationMs: number;
  requests: number;
  requestsPerSec: number;
  errors: number;
  /** the first few errors, for the reader */
  errorSamples: string[];
  byKind: Record<string, { count: number; statuses: Record<string, number>; p50Ms: number; p99Ms: number }>;
  intervals: IntervalStats[];
  drift: { firstP50Ms: number; lastP50Ms: number; firstP99Ms: number; lastP99Ms: number };
  memory: { rssStartMb: number; rssEndMb: number; rssGrowthMb: number; heapStartMb: number; heapEndMb: number; heapGrowthMb: number; gcAvailable: boolean };
  /** process.getActiveResourcesInfo() counts by type: before the gateway started, and after everything closed */
  resources: { before: Record<string, number>; after: Record<string, number>; leaked: Record<string, number> };
  /** open server connections once the client closed its pool (should be 0) */
  serverConnectionsAfterClientClose: number;
  /** responses the server logged as not completed: the abandoned streams, seen from its side */
  serverIncompleteResponses: number;
  /** listeners on the HTTP server before traffic and after it */
  serverListeners: { before: number; after: number };
}

function gcFunction(): (() => void) | undefined {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (existing) return existing;
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as () => void;
  } catch {
    return undefined;
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

function statsOf(latencies: number[]): { p50Ms: number; p99Ms: number } {
  const sorted = [...latencies].sort((a, b) => a - b);
  return { p50Ms: round(percentile(sorted, 50)), p99Ms: round(percentile(sorted, 99)) };
}

const round = (n: number, digits = 2): number => Number(n.toFixed(digits));
const mb = (bytes: number): number => round(bytes / 1024 / 1024);

function resourceCounts(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
}

function isLoopbackUrl(text: string): boolean {
  try {
    const host = new URL(text).hostname;
    return host === '127.0.0.1' || host === 'localhost' || host === '[::1]' || host === '::1';
  } catch {
    return false;
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setTimeout(resolve, 50));
}

/** Runs the soak and returns its report; loopback only, bounded by time and by count. */
export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  if (options.redisUrl !== undefined && !isLoopbackUrl(options.redisUrl)) throw new Error('soak: --redis must be a loopback URL');
  const intervals = Math.max(2, options.intervals ?? 5);
  const gc = gcFunction();
  const collect = (): void => {
    gc?.();
    gc?.();
  };

  collect();
  await settle();
  const resourcesBefore = resourceCounts();

  // a slow service of the soak's own, so that a client can walk away in the middle of a stream
  const configDir = mkdtempSync(join(tmpdir(), 'aisbgw-soak-'));
  const configPath = join(configDir, 'config.json');
  writeFileSync(configPath, JSON.stringify({ services: { 'chat:slow': { kind: 'dummy', streamDelayMs: 5 } } }));
  const config = loadConfig({
    AISBREAKER_SECRET: SOAK_SECRET,
    AISBREAKER_CONFIG: configPath,
    LOG_LEVEL: 'info',
    API_MINT_LIMITS: 'off',
    API_AUTH_FAILURE_LIMITS: 'off',
    ...(options.redisUrl ? { REDIS_URL: options.redisUrl } : {}),
    ...options.env,
  });
  let incomplete = 0;
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        if (line.includes('"completed":false')) incomplete++;
        options.onLog?.(line);
      }
      callback();
    },
  });
  const gateway = createGateway({ config, secret: SOAK_SECRET, logger: createLogger(config.logLevel, sink), metrics: new Metrics({ processMetrics: false }) });
  await gateway.ready();
  const server: Server = await new Promise((resolve) => {
    const s = gateway.app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const listenerCount = (): number => server.eventNames().reduce((sum, name) => sum + server.listenerCount(name), 0);
  const listenersBefore = listenerCount();
  const agent = new Agent({ connections: options.concurrency, keepAliveTimeout: 10_000 });
  const adminKey = options.env?.AISBREAKER_ADMIN_KEY;

  async function call(kind: TrafficKind, path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; body: string }> {
    const res = await fetch(`${base}${path}`, { ...init, dispatcher: agent, signal: AbortSignal.timeout(10_000) });
    const body = await res.text();
    options.onResponse?.(kind, res.status, body);
    return { status: res.status, body };
  }

  const serviceSecrets = options.serviceSecret ? [{ serviceId: 'chat:openai.com', authSecret: options.serviceSecret }] : [];
  async function mintOne(kind: TrafficKind, requestQuotas: object): Promise<{ status: number; token: string | undefined }> {
    const res = await call(kind, '/api/v1/oauth/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...(adminKey ? { Authorization: `Bearer ${adminKey}` } : {}) },
      body: JSON.stringify({ requestAuthAndQuotas: { requestQuotas, serviceSecrets }, expirationTimeSpan: '1h' }),
    });
    return { status: res.status, token: res.status === 200 ? (JSON.parse(res.body) as { access_token: string }).access_token : undefined };
  }

  const generous = { perClientRequestLimits: { requestsPerMinute: 1_000_000 }, globalRequestLimits: { requestsPerHour: 100_000_000 } };
  const pool: string[] = [];
  for (let i = 0; i < 16; i++) {
    const { token } = await mintOne('mint', generous);
    if (!token) throw new Error('soak: could not mint the initial tokens');
    pool.push(token);
  }
  const exhausted = (await mintOne('mint', { globalRequestLimits: { requestsPerDay: 1 } })).token ?? '';
  await call('process', '/api/v1/process', { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${exhausted}` }, body: processBody(false) });

  const pick = <T>(items: T[]): T => items[Math.floor(Math.random() * items.length)] as T;
  const weights = MIX.reduce((sum, [, w]) => sum + w, 0);
  const nextKind = (): TrafficKind => {
    let r = Math.random() * weights;
    for (const [kind, w] of MIX) if ((r -= w) < 0) return kind;
    return 'process';
  };
  function processBody(stream: boolean): string {
    return JSON.stringify({ service: { serviceId: 'chat:dummy' }, request: { inputs: [{ text: { role: 'user', content: 'soak' } }], ...(stream ? { stream: true } : {}) } });
  }
  function chatBody(stream: boolean): string {
    return JSON.stringify({ model: 'chat:echo/soak', messages: [{ role: 'user', content: 'soak test' }], ...(stream ? { stream: true } : {}) });
  }
  function altered(token: string): string {
    const at = 11 + Math.floor(Math.random() * (token.length - 11));
    const c = token[at] === 'A' ? 'B' : 'A';
    return token.slice(0, at) + c + token.slice(at + 1);
  }

  async function one(kind: TrafficKind): Promise<number> {
    const token = pick(pool);
    const auth = (t: string): Record<string, string> => ({ Authorization: `Bearer ${t}`, 'Content-Type': 'application/json' });
    switch (kind) {
      case 'mint': {
        const { status, token: fresh } = await mintOne(kind, { perClientRequestLimits: { requestsPerMinute: 1000 + Math.floor(Math.random() * 1000) } });
        // new tokens replace old ones in the pool: the token cache and quota store see a stream of new ids
        if (fresh) pool[Math.floor(Math.random() * pool.length)] = fresh;
        return status;
      }
      case 'process':
      case 'process-stream': {
        const res = await call(kind, '/api/v1/process', { method: 'POST', headers: auth(token), body: processBody(kind === 'process-stream') });
        if (kind === 'process-stream' && res.status === 200 && !res.body.includes('event: final')) return -1;
        return res.status;
      }
      case 'chat':
      case 'chat-stream': {
        const res = await call(kind, '/v1/chat/completions', { method: 'POST', headers: auth(token), body: chatBody(kind === 'chat-stream') });
        if (kind === 'chat-stream' && res.status === 200 && !res.body.includes('[DONE]')) return -1;
        return res.status;
      }
      case 'tokeninfo':
        return (await call(kind, '/api/v1/oauth/tokeninfo', { headers: auth(token) })).status;
      case 'bad-token':
        return (await call(kind, '/api/v1/process', { method: 'POST', headers: auth(altered(token)), body: processBody(false) })).status;
      case 'rate-limited':
        return (await call(kind, '/api/v1/process', { method: 'POST', headers: auth(exhausted), body: processBody(false) })).status;
      case 'abandoned-stream': {
        const controller = new AbortController();
        const res = await fetch(`${base}/api/v1/process`, {
          method: 'POST',
          headers: auth(token),
          body: JSON.stringify({ service: { serviceId: 'chat:slow' }, request: { inputs: [{ text: { role: 'user', content: 'walk away' } }], stream: true } }),
          dispatcher: agent,
          signal: controller.signal,
        });
        const reader = res.body?.getReader();
        const first = await reader?.read();
        controller.abort();
        await reader?.cancel().catch(() => undefined);
        // the first event arrived, then the client left in the middle of the stream
        return res.status === 200 && first?.value !== undefined ? 200 : res.status === 200 ? -1 : res.status;
      }
    }
  }

  interface Sample {
    kind: TrafficKind;
    status: number;
    ms: number;
  }
  const samples: Sample[] = [];
  const errorSamples: string[] = [];
  let errors = 0;
  let started = 0;
  const t0 = performance.now();
  const deadline = t0 + options.durationMs;
  let memoryStart: { rss: number; heap: number } | undefined;
  const warmupRequests = Math.min(Math.floor(options.maxRequests / 10), 500);
  let progressAt = t0 + 10_000;

  async function worker(): Promise<void> {
    while (performance.now() < deadline && started < options.maxRequests) {
      started++;
      const kind = nextKind();
      const begin = performance.now();
      let status: number;
      try {
        status = await one(kind);
      } catch (err) {
        status = 0;
        if (errorSamples.length < 10) errorSamples.push(`${kind}: ${String(err)}`);
      }
      samples.push({ kind, status, ms: performance.now() - begin });
      if (status !== EXPECTED[kind]) {
        errors++;
        if (status !== 0 && errorSamples.length < 10) errorSamples.push(`${kind}: status ${status}`);
      }
      if (memoryStart === undefined && samples.length >= warmupRequests) {
        // the baseline is taken once warm: code compiled, pools and caches primed
        collect();
        const usage = process.memoryUsage();
        memoryStart = { rss: usage.rss, heap: usage.heapUsed };
      }
      if (options.onProgress && performance.now() > progressAt) {
        progressAt += 10_000;
        options.onProgress(`soak: ${samples.length} requests, ${errors} errors, ${Math.round((performance.now() - t0) / 1000)} s`);
      }
    }
  }
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  const elapsedMs = performance.now() - t0;

  await agent.close();
  await settle();
  const connections = await new Promise<number>((resolve) => server.getConnections((_err, count) => resolve(count)));
  const listenersAfter = listenerCount();
  collect();
  const usageEnd = process.memoryUsage();
  const start = memoryStart ?? { rss: usageEnd.rss, heap: usageEnd.heapUsed };

  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await gateway.close();
  rmSync(configDir, { recursive: true, force: true });
  collect();
  await settle();
  const resourcesAfter = resourceCounts();
  const leaked: Record<string, number> = {};
  for (const [type, count] of Object.entries(resourcesAfter)) {
    const extra = count - (resourcesBefore[type] ?? 0);
    if (extra > 0) leaked[type] = extra;
  }

  const per = Math.max(1, Math.ceil(samples.length / intervals));
  const intervalStats: IntervalStats[] = [];
  for (let i = 0; i * per < samples.length; i++) {
    const slice = samples.slice(i * per, (i + 1) * per);
    intervalStats.push({ index: i + 1, requests: slice.length, ...statsOf(slice.map((s) => s.ms)) });
  }
  const byKind: SoakReport['byKind'] = {};
  for (const [kind] of MIX) {
    const of = samples.filter((s) => s.kind === kind);
    const statuses: Record<string, number> = {};
    for (const s of of) statuses[String(s.status)] = (statuses[String(s.status)] ?? 0) + 1;
    byKind[kind] = { count: of.length, statuses, ...statsOf(of.map((s) => s.ms)) };
  }
  const first = intervalStats[0];
  const last = intervalStats.at(-1);

  return {
    durationMs: Math.round(elapsedMs),
    requests: samples.length,
    requestsPerSec: round(samples.length / (elapsedMs / 1000), 1),
    errors,
    errorSamples,
    byKind,
    intervals: intervalStats,
    drift: { firstP50Ms: first?.p50Ms ?? 0, lastP50Ms: last?.p50Ms ?? 0, firstP99Ms: first?.p99Ms ?? 0, lastP99Ms: last?.p99Ms ?? 0 },
    memory: {
      rssStartMb: mb(start.rss),
      rssEndMb: mb(usageEnd.rss),
      rssGrowthMb: mb(usageEnd.rss - start.rss),
      heapStartMb: mb(start.heap),
      heapEndMb: mb(usageEnd.heapUsed),
      heapGrowthMb: mb(usageEnd.heapUsed - start.heap),
      gcAvailable: gc !== undefined,
    },
    resources: { before: resourcesBefore, after: resourcesAfter, leaked },
    serverConnectionsAfterClientClose: connections,
    serverIncompleteResponses: incomplete,
    serverListeners: { before: listenersBefore, after: listenersAfter },
  };
}

export function formatReport(report: SoakReport): string {
  const lines: string[] = [];
  const row = (cells: (string | number)[], widths: number[]): string => cells.map((c, i) => String(c).padEnd(widths[i] ?? 10)).join(' ');
  lines.push(`soak: ${report.requests} requests in ${(report.durationMs / 1000).toFixed(1)} s (${report.requestsPerSec} req/s), ${report.errors} errors`);
  lines.push('');
  const kw = [16, 8, 28, 10, 10];
  lines.push(row(['kind', 'count', 'statuses', 'p50 ms', 'p99 ms'], kw));
  for (const [kind, k] of Object.entries(report.byKind)) {
    lines.push(row([kind, k.count, Object.entries(k.statuses).map(([s, n]) => `${s}:${n}`).join(' '), k.p50Ms, k.p99Ms], kw));
  }
  lines.push('');
  const iw = [10, 10, 10, 10];
  lines.push(row(['interval', 'requests', 'p50 ms', 'p99 ms'], iw));
  for (const i of report.intervals) lines.push(row([i.index, i.requests, i.p50Ms, i.p99Ms], iw));
  lines.push('');
  const m = report.memory;
  lines.push(`latency drift: p50 ${report.drift.firstP50Ms} -> ${report.drift.lastP50Ms} ms, p99 ${report.drift.firstP99Ms} -> ${report.drift.lastP99Ms} ms (first -> last interval)`);
  lines.push(`memory: RSS ${m.rssStartMb} -> ${m.rssEndMb} MB (${m.rssGrowthMb >= 0 ? '+' : ''}${m.rssGrowthMb}), heap after GC ${m.heapStartMb} -> ${m.heapEndMb} MB (${m.heapGrowthMb >= 0 ? '+' : ''}${m.heapGrowthMb})${m.gcAvailable ? '' : ' [no GC available: heap figures are noisy]'}`);
  lines.push(`left behind: ${JSON.stringify(report.resources.leaked)} (handles, sockets, timers beyond those before the start); server connections after the client closed: ${report.serverConnectionsAfterClientClose}; responses cut by the client: ${report.serverIncompleteResponses}; server listeners ${report.serverListeners.before} -> ${report.serverListeners.after}`);
  if (report.errorSamples.length > 0) lines.push(`first errors: ${report.errorSamples.join('; ')}`);
  return lines.join('\n');
}

function parseArgs(argv: string[], env: NodeJS.ProcessEnv): SoakOptions & { jsonPath?: string } {
  const flags = new Map<string, string>();
  for (const arg of argv) {
    const match = /^--([a-z-]+)=(.*)$/.exec(arg);
    if (!match?.[1] || match[2] === undefined) throw new Error(`soak: unknown argument "${arg}" (use --duration=, --requests=, --concurrency=, --intervals=, --redis=, --json=)`);
    flags.set(match[1], match[2]);
  }
  const durationText = flags.get('duration') ?? env.SOAK_DURATION ?? '3m';
  const durationMs = /^\d+$/.test(durationText) ? Number(durationText) * 1000 : ms(durationText as ms.StringValue);
  const maxRequests = Number(flags.get('requests') ?? env.SOAK_REQUESTS ?? 1_000_000);
  const concurrency = Number(flags.get('concurrency') ?? env.SOAK_CONCURRENCY ?? 16);
  const intervals = Number(flags.get('intervals') ?? env.SOAK_INTERVALS ?? 6);
  if (!(durationMs > 0 && durationMs <= 24 * 3600_000)) throw new Error('soak: --duration must be a time span up to 24h');
  if (!(maxRequests >= 1) || !(concurrency >= 1 && concurrency <= 512) || !(intervals >= 2)) throw new Error('soak: --requests >= 1, --concurrency 1..512, --intervals >= 2');
  const redisUrl = flags.get('redis') ?? env.SOAK_REDIS_URL;
  const jsonPath = flags.get('json');
  return { durationMs, maxRequests, concurrency, intervals, ...(redisUrl ? { redisUrl } : {}), ...(jsonPath ? { jsonPath } : {}) };
}

async function main(): Promise<void> {
  const { jsonPath, ...options } = parseArgs(process.argv.slice(2), process.env);
  console.error(`soak: up to ${options.maxRequests} requests for up to ${Math.round(options.durationMs / 1000)} s, ${options.concurrency} at a time, on 127.0.0.1${options.redisUrl ? ` with Redis ${options.redisUrl}` : ''}`);
  const report = await runSoak({ ...options, serviceSecret: 'sk-soak-' + randomBytes(12).toString('hex'), onProgress: (line) => console.error(line) });
  console.log(formatReport(report));
  console.log('');
  console.log(JSON.stringify(report, null, 2));
  if (jsonPath) writeFileSync(jsonPath, JSON.stringify(report, null, 2) + '\n');
  process.exitCode = report.errors > 0 || Object.keys(report.resources.leaked).length > 0 ? 1 : 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(2);
  });
}
