import type { CounterSpec, QuotaPlan } from './plan.js';
import { demandOf, tokenCounters, type ConsumeMode, type CounterStatus, type Demand, type QuotaDecision, type QuotaStore } from './store.js';
import { bucketLeavesWindowAt, bucketMs, msUntilAdmits, oldestCountedBucket } from './windows.js';

interface Counter {
  /** bucket index -> count */
  buckets: Map<number, number>;
  /** when the newest bucket has left the window: the counter can be dropped */
  expiresAtMs: number;
}

const SWEEP_INTERVAL_MS = 60_000;

/**
 * The in-process quota store (one instance; also the fallback while Redis is down). Check and
 * count run in one synchronous step, so concurrent requests cannot interleave. The algorithm is
 * the one described in windows.ts, shared with the Redis script.
 */
export class MemoryQuotaStore implements QuotaStore {
  readonly name = 'memory';
  private readonly counters = new Map<string, Counter>();
  private readonly revoked = new Map<string, number>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly clock: () => number = Date.now) {
    this.sweeper = setInterval(() => this.sweep(this.clock()), SWEEP_INTERVAL_MS);
    this.sweeper.unref();
  }

  async consume(plan: QuotaPlan, nowMs: number, mode: ConsumeMode = 'request'): Promise<QuotaDecision> {
    for (const key of plan.revocationKeys) {
      const revokedUntil = this.revoked.get(key);
      if (revokedUntil !== undefined && revokedUntil > nowMs) return { outcome: 'revoked' };
    }
    return this.apply(plan.counters, nowMs, (c) => demandOf(c, mode));
  }

  async settle(plan: QuotaPlan, nowMs: number, tokens: number): Promise<void> {
    await this.apply(tokenCounters(plan), nowMs, () => ({ need: 0, add: tokens }));
  }

  /** Checks every counter for its demand and, only if all have room, counts each: in one synchronous step. */
  private apply(counters: CounterSpec[], nowMs: number, demandFor: (c: CounterSpec) => Demand): QuotaDecision {
    const checked: { status: CounterStatus; counter: Counter; current: number; add: number }[] = [];
    // when several counters deny, the one that admits last is reported: Retry-After is when all admit
    let denied: { counter: CounterSpec; retryAfterMs: number } | undefined;
    for (const spec of counters) {
      const { need, add } = demandFor(spec);
      const counter = this.liveCounter(spec.key, nowMs, spec.windowMs);
      let used = 0;
      for (const count of counter.buckets.values()) used += count;
      if (need > 0 && used + need > spec.limit) {
        const retryAfterMs = msUntilAdmits(counter.buckets, nowMs, spec.windowMs, spec.limit, need);
        if (!denied || retryAfterMs > denied.retryAfterMs) denied = { counter: spec, retryAfterMs };
        continue;
      }
      const current = Math.floor(nowMs / bucketMs(spec.windowMs));
      const oldest = Math.min(current, ...counter.buckets.keys());
      const status = { counter: spec, remaining: spec.limit - used - add, resetMs: bucketLeavesWindowAt(oldest, spec.windowMs) - nowMs };
      checked.push({ status, counter, current, add });
    }
    if (denied) return { outcome: 'denied', ...denied };
    for (const { status, counter, current, add } of checked) {
      if (add === 0) continue;
      counter.buckets.set(current, (counter.buckets.get(current) ?? 0) + add);
      counter.expiresAtMs = bucketLeavesWindowAt(current, status.counter.windowMs);
      this.counters.set(status.counter.key, counter);
    }
    const statuses = checked.map((c) => c.status);
    return { outcome: 'admitted', statuses };
  }

  /** The counter with buckets that left the window dropped (a new empty one if none). */
  private liveCounter(key: string, nowMs: number, windowMs: number): Counter {
    const counter = this.counters.get(key);
    if (!counter) return { buckets: new Map(), expiresAtMs: 0 };
    const oldest = oldestCountedBucket(nowMs, windowMs);
    for (const index of counter.buckets.keys()) {
      if (index < oldest) counter.buckets.delete(index);
    }
    return counter;
  }

  async revoke(revocationKey: string, expiresAtMs: number): Promise<void> {
    this.revoked.set(revocationKey, expiresAtMs);
  }

  /** Drops counters and revocations that can no longer matter, so memory stays bounded by live traffic. */
  sweep(nowMs: number): void {
    for (const [key, counter] of this.counters) {
      if (counter.expiresAtMs <= nowMs) this.counters.delete(key);
    }
    for (const [key, until] of this.revoked) {
      if (until <= nowMs) this.revoked.delete(key);
    }
  }

  get size(): number {
    return this.counters.size;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
  }
}
