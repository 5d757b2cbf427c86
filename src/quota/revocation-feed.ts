import { Cluster } from 'ioredis';
import type { Logger } from 'pino';
import type { RedisClient } from './redis-connection.js';

const CHANNEL = 'aisbgw:revocations';
/** every live revocation, scored by when it ends: what an instance loads when it (re)connects */
const LEDGER = 'aisbgw:revocations:ledger';
/** counts the ledger's additions: instances reload it when this changed, not every time they look */
const LEDGER_VERSION = 'aisbgw:revocations:ledger:version';
/** how often the ledger's version is looked at: a backstop for what pub/sub can miss without a reconnect */
const LEDGER_CHECK_MS = 5_000;

/**
 * Tells every instance about revocations, for what it remembers locally (DenyCachingStore).
 * Revocation itself is a key in Redis that every quota call checks; but an instance refusing a
 * token from memory for its quota would keep answering 429 instead of 401, and while Redis is down
 * (QUOTA_BACKEND_FAILURE=memory) only what an instance remembers can refuse a revoked token. So
 * each revocation is published (pub/sub, at once) and kept in a ledger that every instance loads
 * each time it has subscribed and its main connection is up (start, reconnect), catching up on
 * what it missed, and besides whenever the ledger's version has changed (looked at every few
 * seconds: one small GET): a cluster's subscriber moves to another node by itself, and what is
 * published meanwhile is lost without any event that would tell.
 */
export class RevocationFeed {
  private subscriber: RedisClient | undefined;
  private reloads: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly logger: Logger,
  ) {}

  async announce(revocationKey: string, untilMs: number, nowMs: number): Promise<void> {
    try {
      await this.redis.zadd(LEDGER, untilMs, revocationKey);
      await this.redis.zremrangebyscore(LEDGER, '-inf', nowMs);
      // like every key of ours, the ledger expires: with the last revocation in it
      const [, lastUntil] = await this.redis.zrange(LEDGER, -1, -1, 'WITHSCORES');
      if (lastUntil !== undefined) {
        await this.redis.pexpireat(LEDGER, Math.ceil(Number(lastUntil)));
        await this.redis.incr(LEDGER_VERSION);
        await this.redis.pexpireat(LEDGER_VERSION, Math.ceil(Number(lastUntil)));
      }
      await this.redis.publish(CHANNEL, JSON.stringify({ key: revocationKey, untilMs }));
    } catch (err) {
      // the revocation mark itself is written: other instances find it on their next Redis call
      this.logger.warn({ reason: err instanceof Error ? err.message : String(err) }, 'revocation not announced to other instances');
    }
  }

  /** Calls `onRevoked` for every live revocation: those in the ledger now and on every reconnect, and each announced later. */
  listen(onRevoked: (revocationKey: string, untilMs: number) => void, clock: () => number): void {
    // the ledger's version as of the last load: read before the ledger, so an addition after the
    // read changes it again and is loaded on the next look
    let loadedVersion: string | null | undefined;
    const catchUp = (): void => {
      this.redis
        .get(LEDGER_VERSION)
        .then((version) => {
          loadedVersion = version;
          return this.redis.zrangebyscore(LEDGER, clock(), '+inf', 'WITHSCORES');
        })
        .then((flat) => {
          for (let i = 0; i + 1 < flat.length; i += 2) onRevoked(flat[i] as string, Number(flat[i + 1]));
        })
        .catch((err: unknown) => this.logger.warn({ reason: err instanceof Error ? err.message : String(err) }, 'cannot load the revocation ledger'));
    };
    // the ledger is read on the main connection, which may come back after the subscriber did
    this.redis.on('ready', catchUp);
    if (this.redis.status === 'ready') catchUp();

    this.reloads = setInterval(() => {
      if (this.redis.status !== 'ready') return;
      this.redis
        .get(LEDGER_VERSION)
        .then((version) => {
          if (version !== loadedVersion) catchUp();
        })
        .catch(() => undefined); // Redis away: the reconnect loads the ledger anyway
    }, LEDGER_CHECK_MS).unref();

    // a subscribed connection can do nothing else. It waits, however long, until Redis is
    // reachable (no command timeout: a slow SUBSCRIBE still completes); each time it is (start,
    // reconnect) it subscribes and only then loads the ledger, so no revocation falls into the gap
    // between the two. (A cluster's own subscriber resubscribes by itself when it moves; the
    // periodic reload above covers that move.)
    const options = { enableOfflineQueue: true, maxRetriesPerRequest: null, commandTimeout: undefined };
    const subscriber =
      this.redis instanceof Cluster
        ? this.redis.duplicate(undefined, { enableOfflineQueue: true, redisOptions: { ...this.redis.options.redisOptions, ...options } })
        : this.redis.duplicate({ ...options, autoResubscribe: false });
    subscriber.on('error', (err: Error) => this.logger.debug({ reason: err.message }, 'revocation feed connection error'));
    subscriber.on('message', (_channel: string, text: string) => {
      const message = parse(text);
      if (message) onRevoked(message.key, message.untilMs);
    });
    subscriber.on('ready', () => {
      subscriber
        .subscribe(CHANNEL)
        .then(catchUp)
        .catch((err: unknown) => {
          if (this.closed) return;
          this.logger.warn({ reason: err instanceof Error ? err.message : String(err) }, 'cannot subscribe to revocations: reconnecting to try again');
          subscriber.disconnect(true);
        });
    });
    this.subscriber = subscriber;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.reloads);
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
