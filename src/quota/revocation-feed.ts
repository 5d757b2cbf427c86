import { Cluster } from 'ioredis';
import type { Logger } from 'pino';
import type { RedisClient } from './redis-connection.js';

const CHANNEL = 'aisbgw:revocations';

/**
 * Tells every instance at once that a token was revoked (Redis pub/sub). Revocation itself is a
 * key in Redis that every quota call checks; the feed is for what an instance remembers locally:
 * a token it already refuses for its quota (deny cache) would otherwise keep getting 429 instead
 * of 401 until the window reopens. Best effort: a message lost while disconnected only delays
 * that switch, never lets a revoked token through.
 */
export class RevocationFeed {
  private subscriber: RedisClient | undefined;

  constructor(
    private readonly redis: RedisClient,
    private readonly logger: Logger,
  ) {}

  async announce(revocationKey: string, untilMs: number): Promise<void> {
    await this.redis.publish(CHANNEL, JSON.stringify({ key: revocationKey, untilMs })).catch((err: unknown) => {
      this.logger.debug({ reason: err instanceof Error ? err.message : String(err) }, 'revocation not announced');
    });
  }

  /** Calls `onRevoked` for every revocation announced by any instance (this one included). */
  listen(onRevoked: (revocationKey: string, untilMs: number) => void): void {
    // a subscribed connection can do nothing else, and it may queue its SUBSCRIBE until connected
    const subscriber = this.redis instanceof Cluster ? this.redis.duplicate(undefined, { enableOfflineQueue: true }) : this.redis.duplicate({ enableOfflineQueue: true });
    subscriber.on('error', (err: Error) => this.logger.debug({ reason: err.message }, 'revocation feed connection error'));
    subscriber.on('message', (_channel: string, text: string) => {
      const message = parse(text);
      if (message) onRevoked(message.key, message.untilMs);
    });
    subscriber.subscribe(CHANNEL).catch((err: unknown) => this.logger.warn({ reason: err instanceof Error ? err.message : String(err) }, 'cannot subscribe to revocations'));
    this.subscriber = subscriber;
  }

  async close(): Promise<void> {
    const subscriber = this.subscriber;
    if (subscriber) await subscriber.quit().catch(() => subscriber.disconnect());
  }
}

function parse(text: string): { key: string; untilMs: number } | undefined {
  try {
    const { key, untilMs } = JSON.parse(text) as { key?: unknown; untilMs?: unknown };
    return typeof key === 'string' && key.startsWith('aisbgw:') && typeof untilMs === 'number' ? { key, untilMs } : undefined;
  } catch {
    return undefined;
  }
}
