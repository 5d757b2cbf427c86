import { Cluster } from 'ioredis';
import type { Logger } from 'pino';
import type { RedisClient } from './redis-connection.js';

const CHANNEL = 'aisbgw:revocations';
/** every live revocation, scored by when it ends: what an instance loads when it (re)connects */
const LEDGER = 'aisbgw:revocations:ledger';
/** counts the ledger's additions: instances read what is new when this changed, not every time they look */
const LEDGER_VERSION = 'aisbgw:revocations:ledger:version';
/** the ledger's revocations again, scored by the version their addition made: what is new since a version */
const LEDGER_BY_VERSION = 'aisbgw:revocations:ledger:by-version';
/** how often the ledger's version is looked at: a backstop for what pub/sub can miss without a reconnect */
const LEDGER_CHECK_MS = 5_000;
/** ended revocations removed from the version index per command */
const PRUNE_BATCH = 500;

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
      // the ledger first, the version after: a reader that sees the new version finds the entry
      await this.redis.zadd(LEDGER, untilMs, revocationKey);
      const ended = await this.redis.zrangebyscore(LEDGER, '-inf', nowMs);
      for (let i = 0; i < ended.length; i += PRUNE_BATCH) await this.redis.zrem(LEDGER_BY_VERSION, ...ended.slice(i, i + PRUNE_BATCH));
      await this.redis.zremrangebyscore(LEDGER, '-inf', nowMs);
      // like every key of ours, the ledger expires: with the last revocation in it
      const [, lastUntil] = await this.redis.zrange(LEDGER, -1, -1, 'WITHSCORES');
      if (lastUntil !== undefined) {
        const expiry = Math.ceil(Number(lastUntil));
        const version = await this.redis.incr(LEDGER_VERSION);
        await this.redis.zadd(LEDGER_BY_VERSION, version, revocationKey);
        for (const key of [LEDGER, LEDGER_VERSION, LEDGER_BY_VERSION]) await this.redis.pexpireat(key, expiry);
      }
      await this.redis.publish(CHANNEL, JSON.stringify({ key: revocationKey, untilMs }));
    } catch (err) {
      // the revocation mark itself is written: other instances find it on their next Redis call
      this.logger.warn({ reason: err instanceof Error ? err.message : String(err) }, 'revocation not announced to other instances');
    }
  }

  /** Calls `onRevoked` for every live revocation: those in the ledger now and on every reconnect, and each announced later. */
  listen(onRevoked: (revocationKey: string, untilMs: number) => void, clock: () => number): void {
    // the version up to which every addition has been read: the whole ledger is read on each
    // (re)connect (its version read first, so an addition after that read is newer), and only the
    // additions after it when the version moved (a whole ledger every few seconds cost each
    // instance seconds of CPU once many revocations lived in it)
    let loadedVersion = 0;
    const failed = (err: unknown): void => this.logger.warn({ reason: err instanceof Error ? err.message : String(err) }, 'cannot load the revocation ledger');
    const catchUp = (): void => {
      this.redis
        .get(LEDGER_VERSION)
        .then(async (version) => {
          const flat = await this.redis.zrangebyscore(LEDGER, clock(), '+inf', 'WITHSCORES');
          for (let i = 0; i + 1 < flat.length; i += 2) onRevoked(flat[i] as string, Number(flat[i + 1]));
          loadedVersion = Number(version ?? 0);
        })
        .catch(failed);
    };
    const readNew = async (): Promise<void> => {
      const flat = await this.redis.zrangebyscore(LEDGER_BY_VERSION, `(${loadedVersion}`, '+inf', 'WITHSCORES');
      const keys = flat.filter((_, i) => i % 2 === 0);
      if (keys.length === 0) return;
      const untils = await this.redis.zmscore(LEDGER, ...keys);
      keys.forEach((key, i) => {
        const until = untils[i];
        if (until != null) onRevoked(key, Number(until));
      });
      // the highest version read, not the counter: an addition counted but not yet indexed is read next time
      loadedVersion = Math.max(loadedVersion, ...flat.filter((_, i) => i % 2 === 1).map(Number));
    };
    // the ledger is read on the main connection, which may come back after the subscriber did
    this.redis.on('ready', catchUp);
    if (this.redis.status === 'ready') catchUp();

    this.reloads = setInterval(() => {
      if (this.redis.status !== 'ready') return;
      this.redis
        .get(LEDGER_VERSION)
        .then((text) => {
          const version = Number(text ?? 0);
          if (version > loadedVersion) return readNew();
          // the counter expired with the last revocation and started again: read all there is
          if (version < loadedVersion) catchUp();
          return undefined;
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
