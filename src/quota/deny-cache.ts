import type { QuotaPlan } from './plan.js';
import type { ConsumeMode, QuotaDecision, QuotaStore } from './store.js';

const MAX_ENTRIES = 100_000;
/** revocations are rare: room for a million, each a key and a number */
const MAX_REVOKED = 1_000_000;

type DeniedDecision = Extract<QuotaDecision, { outcome: 'denied' }>;

/** Sets a map entry, first dropping the oldest entry when the map is full. */
function setBounded<V>(map: Map<string, V>, key: string, value: V, max: number): void {
  if (map.size >= max && !map.has(key)) {
    const oldest = map.keys().next().value;
    if (oldest !== undefined) map.delete(oldest);
  }
  map.set(key, value);
}

/**
 * Remembers denials locally so a token over its limit costs no store round trip while the window
 * lasts. Sound because counts only grow until buckets age out: a counter denied now with
 * retry-after R stays denied for R ms whatever other instances do. Revocations are remembered
 * until the token expires (they never lift), and are checked before denials, so a revocation
 * announced by another instance turns a remembered 429 into a 401 at once. Being checked before
 * the store, they also hold while the store is down (see RevocationFeed).
 */
export class DenyCachingStore implements QuotaStore {
  readonly name: string;
  /** counter key -> until (ms), with the decision to repeat */
  private readonly denials = new Map<string, { untilMs: number; decision: DeniedDecision }>();
  /** revocation key -> until (ms): kept apart, so a flood of quota denials never pushes one out */
  private readonly revoked = new Map<string, number>();

  constructor(
    private readonly inner: QuotaStore,
    /** tells the other instances, whose own deny caches may be refusing the token for its quota */
    private readonly announceRevocation: (revocationKey: string, untilMs: number) => Promise<void> = async () => {},
  ) {
    this.name = inner.name;
  }

  async consume(plan: QuotaPlan, nowMs: number, mode?: ConsumeMode): Promise<QuotaDecision> {
    // a look must show usage, so it always asks the store
    const cached = mode === 'look' ? undefined : this.cachedDenial(plan, nowMs);
    if (cached) return cached;
    const decision = await this.inner.consume(plan, nowMs, mode);
    if (decision.outcome === 'denied' && Number.isFinite(decision.retryAfterMs)) {
      this.remember(decision.counter.key, nowMs + decision.retryAfterMs, decision);
    } else if (decision.outcome === 'revoked') {
      this.markRevoked(plan.revocationKeys[0] ?? '', plan.expiresAtMs);
    }
    return decision;
  }

  settle(plan: QuotaPlan, nowMs: number, tokens: number): Promise<void> {
    return this.inner.settle(plan, nowMs, tokens);
  }

  async revoke(revocationKey: string, expiresAtMs: number, nowMs: number): Promise<void> {
    await this.inner.revoke(revocationKey, expiresAtMs, nowMs);
    this.markRevoked(revocationKey, expiresAtMs);
    await this.announceRevocation(revocationKey, expiresAtMs);
  }

  /** A revocation made here or announced by another instance: it outranks any remembered quota denial. */
  markRevoked(revocationKey: string, untilMs: number): void {
    setBounded(this.revoked, revocationKey, untilMs, MAX_REVOKED);
  }

  private cachedDenial(plan: QuotaPlan, nowMs: number): QuotaDecision | undefined {
    if (this.revoked.size > 0) {
      for (const key of plan.revocationKeys) {
        const untilMs = this.revoked.get(key);
        if (untilMs === undefined) continue;
        if (untilMs > nowMs) return { outcome: 'revoked' };
        this.revoked.delete(key);
      }
    }
    if (this.denials.size === 0) return undefined;
    for (const counter of plan.counters) {
      const entry = this.denials.get(counter.key);
      if (!entry) continue;
      if (entry.untilMs <= nowMs) {
        this.denials.delete(counter.key);
        continue;
      }
      // the denial may have been another plan's (a parent's counter a child spends too): name the
      // counter as this plan knows it, e.g. as an ancestor's
      return { ...entry.decision, counter, retryAfterMs: entry.untilMs - nowMs };
    }
    return undefined;
  }

  private remember(key: string, untilMs: number, decision: DeniedDecision): void {
    setBounded(this.denials, key, { untilMs, decision }, MAX_ENTRIES);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
