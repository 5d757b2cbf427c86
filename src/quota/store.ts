import type { CounterSpec, QuotaPlan } from './plan.js';

/** How the most constrained counter stands after an admitted request: the rate-limit headers. */
export interface CounterStatus {
  counter: CounterSpec;
  remaining: number;
  /** ms until the count of this counter next drops */
  resetMs: number;
}

export type QuotaDecision =
  | { outcome: 'admitted'; statuses: CounterStatus[] }
  | { outcome: 'denied'; counter: CounterSpec; retryAfterMs: number }
  | { outcome: 'revoked' };

/** `request`: check and count a request; `look`: report revocation and usage, count nothing. */
export type ConsumeMode = 'request' | 'look';

/** What a step asks of one counter: room for `need` more within its limit, then `add` counted. */
export interface Demand {
  need: number;
  add: number;
}

/**
 * Request counters need room for this request and count it. LLM-token counters need the window
 * not to be used up yet and count nothing now: the tokens are settled after the answer.
 */
export function demandOf(counter: CounterSpec, mode: ConsumeMode): Demand {
  if (mode === 'look') return { need: 0, add: 0 };
  return { need: 1, add: counter.unit === 'requests' ? 1 : 0 };
}

/** The counters a settlement touches: the LLM-token ones, counted unchecked (the request already ran). */
export function tokenCounters(plan: QuotaPlan): CounterSpec[] {
  return plan.counters.filter((c) => c.unit === 'tokens');
}

/**
 * Checks every counter of a plan and, only if all admit, counts the request in each: atomically,
 * so concurrent requests (in this process or, for Redis, any process) never overshoot a limit.
 */
export interface QuotaStore {
  readonly name: string;
  consume(plan: QuotaPlan, nowMs: number, mode?: ConsumeMode): Promise<QuotaDecision>;
  /** counts `tokens` LLM tokens in the plan's token counters, after the answer */
  settle(plan: QuotaPlan, nowMs: number, tokens: number): Promise<void>;
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
