import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, RateLimiterUnion, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { ApiLimit } from '../config.js';
import type { ApiError } from '../errors.js';
import { rateLimited, type LimitHit } from './guard.js';
import { KEY_PREFIX } from './plan.js';
import type { RedisClient } from './redis-connection.js';
import { WINDOW_MS } from './windows.js';

const MAX_BLOCKED_ADDRESSES = 100_000;

/**
 * API-wide per-address limits that hold whatever token is (or is not) presented: minting, and
 * requests with refused credentials. rate-limiter-flexible's fixed windows are plenty for this
 * protection; in Redis they are shared by all instances, with a memory insurance limiter while
 * Redis is down (protection should not fail open, nor block everybody).
 */
export class ApiRateLimits {
  private readonly limiters: { limit: ApiLimit; limiter: RateLimiterAbstract }[];
  private readonly union: RateLimiterUnion | undefined;
  /** addresses known to be over a limit, until when */
  private readonly blocks = new Map<string, { untilMs: number; hit: LimitHit }>();

  constructor(name: string, limits: ApiLimit[], redis: RedisClient | undefined) {
    this.limiters = limits.map((limit) => {
      const options = { keyPrefix: `${KEY_PREFIX}:api:${name}:${limit.window}`, points: limit.count, duration: WINDOW_MS[limit.window] / 1000 };
      const limiter = redis
        ? new RateLimiterRedis({ ...options, storeClient: redis, insuranceLimiter: new RateLimiterMemory(options) })
        : new RateLimiterMemory(options);
      return { limit, limiter };
    });
    this.union = this.limiters.length > 0 ? new RateLimiterUnion(...this.limiters.map((l) => l.limiter)) : undefined;
  }

  /** Counts one request from `address`; the 429 to answer when that exceeded a limit. */
  async consume(address: string): Promise<ApiError | undefined> {
    if (!this.union) return undefined;
    try {
      await this.union.consume(address);
      return undefined;
    } catch (rejection) {
      return this.errorFor(address, rejection as Record<string, unknown>);
    }
  }

  /**
   * Runs `attempt` for `address` and counts it when it fails as `isRefusal` says (refused
   * credentials of any kind: bad tokens, wrong keys); the one that puts the address over a limit
   * is answered by the 429 instead. While the address is over a limit, `attempt` is handed that
   * 429 and decides: throw it (a credential that could be guessed) or go on; a refusal then is
   * the 429 too.
   */
  async countRefusals<T>(address: string, attempt: (blocked: ApiError | undefined) => Promise<T> | T, isRefusal: (err: unknown) => boolean): Promise<T> {
    const blocked = this.blocked(address, Date.now());
    try {
      return await attempt(blocked);
    } catch (err) {
      if (!isRefusal(err)) throw err;
      throw blocked ?? (await this.consume(address)) ?? err;
    }
  }

  /**
   * The 429 to answer when `address` went over a limit here before and its window still lasts.
   * Local and synchronous: checking costs no store round trip, so it can sit on the hot path.
   */
  blocked(address: string, nowMs: number): ApiError | undefined {
    const block = this.blocks.get(address);
    if (!block) return undefined;
    if (block.untilMs <= nowMs) {
      this.blocks.delete(address);
      return undefined;
    }
    return rateLimited(block.hit, block.untilMs - nowMs);
  }

  private errorFor(address: string, rejection: Record<string, unknown>): ApiError | undefined {
    for (const { limit, limiter } of this.limiters) {
      const res = rejection[limiter.keyPrefix];
      if (!(res instanceof RateLimiterRes)) continue;
      const hit = { scope: 'api' as const, window: limit.window, limit: limit.count };
      if (this.blocks.size >= MAX_BLOCKED_ADDRESSES) this.blocks.delete(this.blocks.keys().next().value ?? '');
      this.blocks.set(address, { untilMs: Date.now() + res.msBeforeNext, hit });
      return rateLimited(hit, res.msBeforeNext);
    }
    return undefined; // the store failed and no insurance answered: let the request through
  }
}
