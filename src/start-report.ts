import type { AddressInfo } from 'node:net';
import type { Config } from './config.js';

/**
 * What an operator needs to know once the gateway listens: where it is, where its console and docs
 * are, which quota store and config file it uses, and which endpoints anyone who can reach it may
 * call. Never a secret: the Redis address is shown without its credentials.
 */
export interface StartReport {
  message: string;
  fields: { url: string; console: string; docs: string; quotaStore: string; configFile: string; tracing: string };
  /** endpoints open to anyone who can reach the listen address, and why */
  warnings: string[];
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** `tracingEndpoint`: where spans go, when tracing is on; `adminRequired`: an admin credential is configured (the admin key, or an operator key with the admin scope). */
export function startReport(config: Config, address: AddressInfo, tracingEndpoint?: string, adminRequired = config.adminKey !== undefined): StartReport {
  const anyAddress = address.address === '0.0.0.0' || address.address === '::';
  // an address that listens everywhere is reached at localhost from this machine
  const host = anyAddress ? 'localhost' : address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  const reach = LOOPBACK.has(address.address) ? 'on this machine' : `who can reach ${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  const warnings: string[] = [];
  if (!adminRequired) {
    warnings.push(`minting (POST /api/v1/oauth/token) and introspection are open to anyone ${reach}: neither AISBREAKER_ADMIN_KEY nor an operator key with the admin scope is set`);
  }
  warnings.push(`/metrics is open to anyone ${reach} (it names operator projects): keep it off the public side of your proxy`);
  return {
    message: `aisbreaker-gateway listening on ${url}`,
    fields: { url, console: `${url}/console`, docs: `${url}/docs`, quotaStore: quotaStoreOf(config), configFile: config.configPath ?? 'none (built-in services; AISBREAKER_CONFIG names a file)',
      tracing: tracingEndpoint === undefined ? 'off (OTEL_EXPORTER_OTLP_ENDPOINT turns it on)' : `OpenTelemetry, OTLP to ${tracingEndpoint}`,
    },
    warnings,
  };
}

function quotaStoreOf(config: Config): string {
  const onFailure = `QUOTA_BACKEND_FAILURE=${config.quotaBackendFailure}`;
  if (config.redisClusterNodes.length > 0) return `Redis Cluster ${config.redisClusterNodes.join(',')} (${onFailure})`;
  if (config.redisUrl !== undefined) {
    const redis = new URL(config.redisUrl);
    return `Redis ${redis.protocol}//${redis.host}${redis.pathname === '/' ? '' : redis.pathname} (${onFailure})`;
  }
  return 'memory (this process only; REDIS_URL shares quotas between instances)';
}
