import type { CounterSpec, QuotaPlan } from './plan.js';

/** How the most constrained counter stands after an admitted request: the rate-limit headers. */
export interface CounterStatus {
  counter: CounterSpec;
  remaining: number;
  /** ms until the count of this counter next drops */
  resetMs: number;
}

export type QuotaDecision =
  | { outcome: 'admitted'; statuses: CounterStatus[]; tightest: CounterStatus | undefined }
  | { outcome: 'denied'; counter: CounterSpec; retryAfterMs: number }
  | { outcome: 'revoked' };

/**
 * Checks every counter of a plan and, only if all admit, counts the request in each: atomically,
 * so concurrent requests (in this process or, for Redis, any process) never overshoot a limit.
 */
export interface QuotaStore {
  readonly name: string;
  /** cost 0 only looks: revocation and current usage, nothing counted */
  consume(plan: QuotaPlan, nowMs: number, cost?: number): Promise<QuotaDecision>;
  /** records a revoked token id until `expiresAtMs` */
  revoke(revocationKey: string, expiresAtMs: number, nowMs: number): Promise<void>;
  close(): Promise<void>;
}

/** The counter with the fewest requests left; the earliest reset breaks ties. */
export function tightestOf(statuses: CounterStatus[]): CounterStatus | undefined {
  let best: CounterStatus | undefined;
  for (const s of statuses) {
    if (!best || s.remaining < best.remaining || (s.remaining === best.remaining && s.resetMs < best.resetMs)) best = s;
  }
  return best;
}
