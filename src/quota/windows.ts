/**
 * Sliding windows, counted in buckets.
 *
 * Algorithm: each counter (one token, one scope, one window) keeps a count per bucket of
 * `windowMs / BUCKETS_PER_WINDOW` ms, aligned to the epoch. A request at time t is admitted when
 * the sum over every bucket that overlaps [t - windowMs, t], plus its cost, stays within the
 * limit; then its cost is added to the bucket of t. Check and add happen atomically (one Lua
 * script in Redis, one synchronous step in memory), for all windows of a request together.
 *
 * Worst-case overshoot: none. Proof: take any interval (t - W, t] and the last request admitted
 * in it, at t_k <= t. Every earlier admission s in that interval has s > t - W >= t_k - W, so its
 * bucket overlaps [t_k - W, t_k] and was counted at t_k; t_k was admitted only if that count plus
 * its own cost was <= N. So no interval of length W ever holds more than N admissions, including
 * bursts that straddle a window boundary. (Across instances this assumes their clocks agree; a
 * skew of d ms can at most let the requests of a d ms slice be counted in one window too few.)
 *
 * LLM-token counters are checked the same way before the request (admitted while the window is
 * not yet used up) but counted after it, from the upstream's usage: the request that crosses the
 * limit completes, and the ones after it are refused until enough of the window has passed.
 *
 * The price is undershoot: the bucket holding t - W is counted whole, so a request may be refused
 * up to one bucket (5% of the window) before a strict sliding log would admit it. Retry-After
 * reports exactly when the window admits again under these rules.
 */

export type WindowName = 'minute' | 'hour' | 'day' | 'week' | 'month';

export const BUCKETS_PER_WINDOW = 20;

export const WINDOW_MS: Record<WindowName, number> = {
  minute: 60_000,
  hour: 3_600_000,
  day: 86_400_000,
  week: 7 * 86_400_000,
  /** 30 days: a sliding month */
  month: 30 * 86_400_000,
};

export function bucketMs(windowMs: number): number {
  return windowMs / BUCKETS_PER_WINDOW;
}

/** Oldest bucket index that still overlaps [now - windowMs, now]. */
export function oldestCountedBucket(nowMs: number, windowMs: number): number {
  return Math.floor((nowMs - windowMs) / bucketMs(windowMs));
}

/** When bucket `index` stops being counted: once now - windowMs reaches its end. */
export function bucketLeavesWindowAt(index: number, windowMs: number): number {
  return (index + 1) * bucketMs(windowMs) + windowMs;
}

/**
 * Ms from now until a counter with these buckets (index -> count) has room for `need` more within
 * `limit`, if nothing else is counted meanwhile: buckets leave the window oldest first.
 */
export function msUntilAdmits(buckets: Iterable<[number, number]>, nowMs: number, windowMs: number, limit: number, need: number): number {
  const ordered = [...buckets].sort((a, b) => a[0] - b[0]);
  let total = ordered.reduce((sum, [, count]) => sum + count, 0);
  for (const [index, count] of ordered) {
    if (total + need <= limit) break;
    total -= count;
    if (total + need <= limit) return Math.max(1, bucketLeavesWindowAt(index, windowMs) - nowMs);
  }
  return total + need <= limit ? 0 : Number.POSITIVE_INFINITY;
}
