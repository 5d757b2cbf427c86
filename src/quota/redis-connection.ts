import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../config.js';

export type RedisClient = Redis | Cluster;

/**
 * ioredis' own command timeout: a backstop above REDIS_COMMAND_TIMEOUT_MS. The quota store bounds
 * its calls by REDIS_COMMAND_TIMEOUT_MS itself, in a way that does not take this process's event
 * loop lag for a slow Redis (see withDeadline in redis-store.ts); ioredis' timer, firing first,
 * would discard a reply that had already arrived. Other users of the connection (the API-wide
 * limits) wait up to this long for a hung Redis.
 */
export function backstopTimeoutMs(commandTimeoutMs: number): number {
  return Math.max(3 * commandTimeoutMs, commandTimeoutMs + 2000);
}

/**
 * The shared Redis (or Redis Cluster) connection, set up to fail fast rather than queue: while
 * Redis is unreachable, commands fail at once (no offline queue) and a hung Redis times out (after
 * REDIS_COMMAND_TIMEOUT_MS for quota decisions), so the failover policy decides within a bounded
 * time. ioredis reconnects by itself.
 */
export function connectRedis(config: Config, logger: Logger): RedisClient | undefined {
  const options: RedisOptions = {
    enableOfflineQueue: false,
    commandTimeout: backstopTimeoutMs(config.redisCommandTimeoutMs),
    maxRetriesPerRequest: 1,
    enableAutoPipelining: true,
    retryStrategy: (attempt) => Math.min(attempt * 100, 2000),
  };
  let client: RedisClient;
  if (config.redisClusterNodes.length > 0) {
    const nodes = config.redisClusterNodes.map((node) => {
      const [host, port] = node.split(':');
      return { host: host ?? '127.0.0.1', port: Number(port) };
    });
    client = new Cluster(nodes, {
      redisOptions: options,
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      clusterRetryStrategy: options.retryStrategy,
      // ioredis would retry a command every 100 ms up to 16 times while a node is down or the
      // cluster reports CLUSTERDOWN: ~1.7 s per request, beyond REDIS_COMMAND_TIMEOUT_MS. Fail at
      // once instead; the failover policy decides, and MOVED redirections still follow.
      retryDelayOnClusterDown: 0,
      retryDelayOnFailover: 0,
    });
  } else if (config.redisUrl !== undefined) {
    client = new Redis(config.redisUrl, options);
  } else {
    return undefined;
  }
  // ioredis reports every failed reconnect; the quota store logs outages once, so keep these at debug
  client.on('error', (err: Error) => {
    lastConnectionError.set(client, err.message);
    logger.debug({ reason: err.message }, 'redis connection error');
  });
  // a Redis that goes away closes the connection before any reconnect can fail with a reason
  client.on('close', () => lastConnectionError.set(client, lastConnectionError.get(client) ?? 'the connection was closed'));
  client.on('ready', () => lastConnectionError.delete(client));
  return client;
}

/** Each connection's last error: what a command refused while it is down fails for. */
const lastConnectionError = new WeakMap<RedisClient, string>();

/**
 * Why a Redis call failed, for the log: while the connection is down ioredis refuses commands with
 * its own state ("Stream isn't writeable and enableOfflineQueue options is false"); the cause is
 * the connection's last error ("connect ECONNREFUSED 127.0.0.1:6380").
 */
export function redisFailureReason(client: RedisClient, err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  // a socket's own error names its cause and address already ("read ECONNRESET", "connect ECONNREFUSED 127.0.0.1:6380")
  if (/^E[A-Z]+$/.test(String((err as { code?: unknown } | undefined)?.code))) return `Redis is unreachable: ${message}`;
  // the connection may be gone a moment before its status says so
  if (client.status === 'ready' && !DISCONNECTED.test(message)) return message;
  return `Redis is unreachable: ${lastConnectionError.get(client) ?? 'the connection was closed'}`;
}

/** ioredis' refusals of a command while it has no connection */
const DISCONNECTED = /Stream isn't writeable|Connection is closed/;

/** Resolves when the connection is ready, or after `timeoutMs` (the failover policy covers the rest). */
export async function waitUntilReady(client: RedisClient, timeoutMs: number): Promise<boolean> {
  if (client.status === 'ready') return true;
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      resolve(false);
    }, timeoutMs);
    const onReady = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    client.once('ready', onReady);
  });
}
