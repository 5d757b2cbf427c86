import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { Metrics } from '../metrics.js';
import { DenyCachingStore } from './deny-cache.js';
import { FailoverQuotaStore } from './failover-store.js';
import { MemoryQuotaStore } from './memory-store.js';
import { redisFailureReason, type RedisClient } from './redis-connection.js';
import { RedisQuotaStore } from './redis-store.js';
import { RevocationFeed } from './revocation-feed.js';
import type { QuotaStore } from './store.js';

/** For /readyz: `ready` is false only while the shared store is down and the policy is to reject. */
export interface QuotaReadiness {
  ready: boolean;
  /** memory: no Redis configured; redis: in use; fallback: Redis down, per-instance limits; unavailable: Redis down, 503 */
  quotaStore: 'memory' | 'redis' | 'fallback' | 'unavailable';
}

export interface QuotaBackend {
  store: QuotaStore;
  isServing(): QuotaReadiness;
  close(): Promise<void>;
}

/** Memory when no Redis is configured; otherwise Redis behind the failover policy and the deny cache. */
export function createQuotaBackend(config: Config, redis: RedisClient | undefined, logger: Logger, clock: Clock, metrics: Metrics): QuotaBackend {
  if (!redis) {
    const store = new MemoryQuotaStore(clock);
    return { store, isServing: () => ({ ready: true, quotaStore: 'memory' }), close: () => store.close() };
  }
  const observer = {
    failed: () => metrics.quotaStoreErrors.inc(),
    degraded: (isDegraded: boolean) => metrics.quotaStoreDegraded.set(isDegraded ? 1 : 0),
  };
  const failover = new FailoverQuotaStore(new RedisQuotaStore(redis, config.redisCommandTimeoutMs), new MemoryQuotaStore(clock), config.quotaBackendFailure, logger, observer, (err) =>
    redisFailureReason(redis, err),
  );
  redis.on('error', (err: Error) => failover.connectionLost(err, clock()));
  const feed = new RevocationFeed(redis, logger);
  const store = new DenyCachingStore(failover, (key, untilMs) => feed.announce(key, untilMs, clock()));
  feed.listen((key, untilMs) => store.markRevoked(key, untilMs), clock);
  return {
    store,
    close: async () => {
      await feed.close();
      await store.close();
    },
    isServing: () => {
      // a lost connection is an outage before any request finds out: commands fail at once until it is back
      if (!failover.degraded && redis.status === 'ready') return { ready: true, quotaStore: 'redis' };
      return config.quotaBackendFailure === 'reject' ? { ready: false, quotaStore: 'unavailable' } : { ready: true, quotaStore: 'fallback' };
    },
  };
}
