import { isIP } from 'node:net';
import ms from 'ms';
import type { WindowName } from './quota/windows.js';

/**
 * Environment -> one typed, validated Config. Pure: reads only the env object it is given, so
 * tests build configs without touching process.env. Secrets are resolved separately
 * (see server-secret.ts) because the default one lives on disk.
 */

/** A per-address API limit: `count` requests per `window` (e.g. "60/minute"). */
export interface ApiLimit {
  count: number;
  window: WindowName;
}

export type TrustProxy = boolean | number | string;
export type QuotaBackendFailure = 'memory' | 'reject';

export interface Config {
  port: number;
  host: string;
  /** explicit AISBREAKER_SECRET, or undefined: generate/persist one under dataDir */
  secret: string | undefined;
  previousSecrets: string[];
  legacyKeyphrases: string[];
  adminKey: string | undefined;
  maxTokenLifetimeMs: number;
  configPath: string | undefined;
  dataDir: string;
  redisUrl: string | undefined;
  redisClusterNodes: string[];
  redisCommandTimeoutMs: number;
  quotaBackendFailure: QuotaBackendFailure;
  trustProxy: TrustProxy;
  /** TRUST_FORWARDED_HOST=on: the trusted proxy sets X-Forwarded-Host, and tokens are bound to it */
  trustForwardedHost: boolean;
  openaiBaseUrl: string;
  openaiApiKey: string | undefined;
  anthropicBaseUrl: string;
  anthropicApiKey: string | undefined;
  logLevel: string;
  /** how long in-flight requests and streams may take to finish after SIGTERM/SIGINT */
  shutdownGraceMs: number;
  /** per client address, on POST /api/v1/oauth/token */
  mintLimits: ApiLimit[];
  /** per client address, on requests whose credential is refused (brute-force protection) */
  authFailureLimits: ApiLimit[];
  /** credentials expiring within this many ms are told so in a response header (0: never) */
  expiryNoticeMs: number;
  /** METRICS_AUTH=on: /metrics needs a credential with the analytics:read scope */
  metricsAuth: boolean;
  /** WORKERS: processes serving the one port together (node:cluster) */
  workers: number;
  /** URL prefixes (origin + path, no trailing slash) a request may name as aisbreaker:network's `url`; ['*']: any */
  networkUrls: string[];
  /** serve callers without an aisbreaker token, as the original AIsBreaker server does */
  openAccess: boolean;
  /** the quotas of open access: per client address, and all open callers together */
  openAccessClientLimits: ApiLimit[];
  openAccessGlobalLimits: ApiLimit[];
}

export const MIN_SECRET_LENGTH = 32;
const MAX_WORKERS = 64;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** All problems of a config at once, one line each, so an operator fixes them in one go. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed ? trimmed : undefined;
}

function splitList(value: string | undefined, separator: RegExp): string[] {
  return (value ?? '').split(separator).map((s) => s.trim()).filter((s) => s.length > 0);
}

const TRUST_PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** Runs a start-up step; a ConfigError ends the process with one clear line per problem. */
export function orExitOnConfigError<T>(step: () => T): T {
  try {
    return step();
  } catch (err) {
    if (err instanceof ConfigError) exitOnConfigProblems(err.problems);
    throw err;
  }
}

/** Ends the process with one clear line per problem. */
export function exitOnConfigProblems(problems: string[]): never {
  for (const problem of problems) console.error(`config error: ${problem}`);
  process.exit(2);
}

/** Why Express would refuse this `trust proxy` value (it throws on an entry that is no address or range). */
function trustProxyProblem(value: TrustProxy): string | undefined {
  if (typeof value !== 'string') return undefined;
  for (const entry of value.split(',').map((s) => s.trim())) {
    if (TRUST_PROXY_NAMES.has(entry)) continue;
    const [address = '', range, ...rest] = entry.split('/');
    const family = isIP(address);
    const rangeOk = range === undefined || (/^\d+$/.test(range) && Number(range) <= (family === 4 ? 32 : 128)) || (family === 4 && isIP(range) === 4);
    if (family === 0 || rest.length > 0 || !rangeOk) {
      return `TRUST_PROXY: "${entry}" is not an address, a CIDR range, loopback/linklocal/uniquelocal, a hop count or true/false`;
    }
  }
  return undefined;
}

export function parseTrustProxy(value: string | undefined): TrustProxy {
  const v = nonEmpty(value);
  if (v === undefined || v === 'false') return false;
  if (v === 'true') return true;
  if (/^\d+$/.test(v)) return Number(v);
  return v; // 'loopback', an address list, ...: Express understands these
}

export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];

  const portText = nonEmpty(env.PORT) ?? '3000';
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) {
    problems.push(`PORT: "${portText}" is not a port number (0-65535)`);
  }

  const secret = nonEmpty(env.AISBREAKER_SECRET);
  if (secret !== undefined && secret.length < MIN_SECRET_LENGTH) {
    problems.push(
      `AISBREAKER_SECRET: too short (${secret.length} chars); use >= ${MIN_SECRET_LENGTH} chars, e.g. from "aisbreaker-gateway gen-secret"`,
    );
  }
  const previousSecrets = splitList(env.AISBREAKER_PREVIOUS_SECRETS, /,/);
  previousSecrets.forEach((s, i) => {
    if (s.length < MIN_SECRET_LENGTH) {
      problems.push(`AISBREAKER_PREVIOUS_SECRETS: entry ${i + 1} is too short (${s.length} chars, need >= ${MIN_SECRET_LENGTH})`);
    }
  });

  const adminKey = nonEmpty(env.AISBREAKER_ADMIN_KEY);
  if (adminKey !== undefined && adminKey.length < 16) {
    problems.push('AISBREAKER_ADMIN_KEY: too short (need >= 16 chars)');
  }

  const lifetimeText = nonEmpty(env.AISBREAKER_MAX_TOKEN_LIFETIME) ?? '365d';
  const maxTokenLifetimeMs = parseTimeSpan(lifetimeText);
  if (maxTokenLifetimeMs === undefined) {
    problems.push(`AISBREAKER_MAX_TOKEN_LIFETIME: "${lifetimeText}" is not a time span like "365d" or "12h"`);
  }

  const quotaBackendFailure = nonEmpty(env.QUOTA_BACKEND_FAILURE) ?? 'memory';
  if (quotaBackendFailure !== 'memory' && quotaBackendFailure !== 'reject') {
    problems.push(`QUOTA_BACKEND_FAILURE: must be "memory" or "reject", not "${quotaBackendFailure}"`);
  }

  const logLevel = nonEmpty(env.LOG_LEVEL) ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) {
    problems.push(`LOG_LEVEL: must be one of ${LOG_LEVELS.join(', ')}, not "${logLevel}"`);
  }

  const openaiBaseUrl = nonEmpty(env.OPENAI_BASE_URL) ?? 'https://api.openai.com/v1';
  if (!isHttpUrl(openaiBaseUrl)) {
    problems.push(`OPENAI_BASE_URL: "${openaiBaseUrl}" is not an http(s) URL`);
  }

  const anthropicBaseUrl = nonEmpty(env.ANTHROPIC_BASE_URL) ?? 'https://api.anthropic.com';
  if (!isHttpUrl(anthropicBaseUrl)) {
    problems.push(`ANTHROPIC_BASE_URL: "${anthropicBaseUrl}" is not an http(s) URL`);
  }

  const redisUrl = nonEmpty(env.REDIS_URL);
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) {
    problems.push('REDIS_URL: must start with redis:// or rediss://');
  }
  const redisClusterNodes = splitList(env.REDIS_CLUSTER_NODES, /,/);
  for (const node of redisClusterNodes) {
    if (!/^[^\s:]+:\d+$/.test(node)) problems.push(`REDIS_CLUSTER_NODES: "${node}" is not host:port`);
  }

  const redisTimeoutText = nonEmpty(env.REDIS_COMMAND_TIMEOUT_MS) ?? '1000';
  const redisCommandTimeoutMs = Number(redisTimeoutText);
  if (!/^\d+$/.test(redisTimeoutText) || redisCommandTimeoutMs < 1) {
    problems.push(`REDIS_COMMAND_TIMEOUT_MS: "${redisTimeoutText}" is not a positive number of milliseconds`);
  }

  const graceText = nonEmpty(env.SHUTDOWN_GRACE_MS) ?? '10000';
  const shutdownGraceMs = Number(graceText);
  if (!/^\d+$/.test(graceText)) problems.push(`SHUTDOWN_GRACE_MS: "${graceText}" is not a number of milliseconds`);

  const mintLimits = parseApiLimits('API_MINT_LIMITS', env.API_MINT_LIMITS ?? DEFAULT_MINT_LIMITS, problems);
  const authFailureLimits = parseApiLimits('API_AUTH_FAILURE_LIMITS', env.API_AUTH_FAILURE_LIMITS ?? DEFAULT_AUTH_FAILURE_LIMITS, problems);

  const networkUrls = parseNetworkUrls(env.AISBREAKER_NETWORK_URLS, problems);
  const openAccessText = nonEmpty(env.AISBREAKER_OPEN_ACCESS) ?? 'off';
  if (openAccessText !== 'on' && openAccessText !== 'off') problems.push(`AISBREAKER_OPEN_ACCESS: must be "on" or "off", not "${openAccessText}"`);
  const openAccessClientLimits = parseApiLimits('OPEN_ACCESS_CLIENT_LIMITS', env.OPEN_ACCESS_CLIENT_LIMITS ?? DEFAULT_OPEN_ACCESS_CLIENT_LIMITS, problems);
  const openAccessGlobalLimits = parseApiLimits('OPEN_ACCESS_GLOBAL_LIMITS', env.OPEN_ACCESS_GLOBAL_LIMITS ?? DEFAULT_OPEN_ACCESS_GLOBAL_LIMITS, problems);

  const trustProxy = parseTrustProxy(env.TRUST_PROXY);
  const trustProxyError = trustProxyProblem(trustProxy);
  if (trustProxyError !== undefined) problems.push(trustProxyError);

  const forwardedHostText = nonEmpty(env.TRUST_FORWARDED_HOST) ?? 'off';
  if (forwardedHostText !== 'on' && forwardedHostText !== 'off') problems.push(`TRUST_FORWARDED_HOST: must be "on" or "off", not "${forwardedHostText}"`);
  const trustForwardedHost = forwardedHostText === 'on';
  // without a trusted proxy Express ignores X-Forwarded-Host: the setting would silently do nothing
  if (trustForwardedHost && trustProxy === false) problems.push('TRUST_FORWARDED_HOST: "on" needs TRUST_PROXY to name the proxy that sets X-Forwarded-Host');

  const noticeText = nonEmpty(env.AISBREAKER_EXPIRY_NOTICE) ?? '7d';
  const expiryNoticeMs = noticeText === 'off' ? 0 : parseTimeSpan(noticeText);
  if (expiryNoticeMs === undefined) problems.push(`AISBREAKER_EXPIRY_NOTICE: "${noticeText}" is not a time span like "7d" or "36h" (or "off")`);

  const workersText = nonEmpty(env.WORKERS) ?? '1';
  const workers = Number(workersText);
  if (!/^\d+$/.test(workersText) || workers < 1 || workers > MAX_WORKERS) problems.push(`WORKERS: "${workersText}" is not a number of processes (1-${MAX_WORKERS})`);
  // each process would count quotas of its own: N processes would admit N times every limit
  else if (workers > 1 && redisUrl === undefined && redisClusterNodes.length === 0) {
    problems.push(`WORKERS: ${workers} processes need a shared quota store (REDIS_URL or REDIS_CLUSTER_NODES); with the memory store each would count its own quotas`);
  }

  const metricsAuthText = nonEmpty(env.METRICS_AUTH) ?? 'off';
  if (metricsAuthText !== 'on' && metricsAuthText !== 'off') problems.push(`METRICS_AUTH: must be "on" or "off", not "${metricsAuthText}"`);

  if (problems.length > 0) throw new ConfigError(problems);

  return {
    port,
    host: nonEmpty(env.HOST) ?? '0.0.0.0',
    secret,
    previousSecrets,
    legacyKeyphrases: splitList(env.AISBREAKER_LEGACY_KEYPHRASES, /\s+/),
    adminKey,
    maxTokenLifetimeMs: maxTokenLifetimeMs as number,
    configPath: nonEmpty(env.AISBREAKER_CONFIG),
    dataDir: nonEmpty(env.AISBREAKER_DATA_DIR) ?? '.data',
    redisUrl,
    redisClusterNodes,
    redisCommandTimeoutMs,
    quotaBackendFailure: quotaBackendFailure as QuotaBackendFailure,
    trustProxy,
    trustForwardedHost,
    openaiBaseUrl: openaiBaseUrl.replace(/\/+$/, ''),
    openaiApiKey: nonEmpty(env.OPENAI_API_KEY),
    anthropicBaseUrl: anthropicBaseUrl.replace(/\/+$/, ''),
    anthropicApiKey: nonEmpty(env.ANTHROPIC_API_KEY),
    logLevel,
    shutdownGraceMs,
    mintLimits,
    authFailureLimits,
    expiryNoticeMs: expiryNoticeMs as number,
    metricsAuth: metricsAuthText === 'on',
    workers,
    networkUrls,
    openAccess: openAccessText === 'on',
    openAccessClientLimits,
    openAccessGlobalLimits,
  };
}

/** AIsBreaker's API-wide per-client quotas. */
const DEFAULT_MINT_LIMITS = '60/minute,360/hour,8640/day';
const DEFAULT_AUTH_FAILURE_LIMITS = '30/minute,300/hour';
const DEFAULT_OPEN_ACCESS_CLIENT_LIMITS = '60/minute,360/hour,8640/day';
const DEFAULT_OPEN_ACCESS_GLOBAL_LIMITS = '600/minute,3600/hour,86400/day';
const MAX_NETWORK_URLS = 64;

/**
 * AISBREAKER_NETWORK_URLS: "*", or comma-separated http(s) URL prefixes, each normalized to
 * origin + path without a trailing slash (matching is on whole path segments: see network-targets.ts).
 */
function parseNetworkUrls(text: string | undefined, problems: string[]): string[] {
  const entries = splitList(text, /,/);
  if (entries.length === 1 && entries[0] === '*') return ['*'];
  if (entries.length > MAX_NETWORK_URLS) problems.push(`AISBREAKER_NETWORK_URLS: at most ${MAX_NETWORK_URLS} entries`);
  const prefixes: string[] = [];
  for (const entry of entries) {
    const url = isHttpUrl(entry) ? new URL(entry) : undefined;
    if (!url || url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
      problems.push(`AISBREAKER_NETWORK_URLS: "${entry}" is not an http(s) URL prefix without credentials, query or fragment (or use "*" alone)`);
      continue;
    }
    prefixes.push(url.origin + url.pathname.replace(/\/+$/, ''));
  }
  return prefixes;
}
const WINDOW_ALIASES: Record<string, WindowName> = { m: 'minute', min: 'minute', minute: 'minute', h: 'hour', hour: 'hour', d: 'day', day: 'day' };

/** "60/minute,360/hour" -> limits; "off" -> none. */
function parseApiLimits(name: string, text: string, problems: string[]): ApiLimit[] {
  const trimmed = text.trim();
  if (trimmed === 'off' || trimmed === '') return [];
  const limits: ApiLimit[] = [];
  for (const part of trimmed.split(',')) {
    const match = /^\s*(\d+)\s*\/\s*([a-z]+)\s*$/.exec(part);
    const window = match?.[2] === undefined ? undefined : WINDOW_ALIASES[match[2]];
    const count = Number(match?.[1]);
    if (!window || !(count >= 1)) {
      problems.push(`${name}: "${part.trim()}" is not <count>/<minute|hour|day> (or use "off")`);
      continue;
    }
    limits.push({ count, window });
  }
  return limits;
}

/**
 * "365d", "2h", "90 days" -> milliseconds; undefined for anything else, including bare numbers
 * (ms would read "3600" as milliseconds, which nobody minting a token means).
 */
export function parseTimeSpan(text: string): number | undefined {
  if (text.length > 32 || /^\s*[\d.]+\s*$/.test(text)) return undefined;
  let value: number | undefined;
  try {
    value = ms(text as ms.StringValue);
  } catch {
    return undefined;
  }
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : undefined;
}

export function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}
