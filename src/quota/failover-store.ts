import type { Logger } from 'pino';
import type { QuotaBackendFailure } from '../config.js';
import { ApiError } from '../errors.js';
import type { MemoryQuotaStore } from './memory-store.js';
import { revocationKey, type QuotaPlan } from './plan.js';
import type { ConsumeMode, QuotaDecision, QuotaStore } from './store.js';

/**
 * A shared store (Redis) with a policy for when it fails: `memory` keeps serving with a local
 * limiter (per instance, starting from zero: limits hold per instance during the outage), `reject`
 * answers 503. Either way the outage is logged once when it starts and once when it ends, and the
 * next successful call ends it: no restart needed.
 */
/** Told of every failed call and of each change between healthy and degraded (for metrics). */
export interface FailoverObserver {
  failed(): void;
  degraded(isDegraded: boolean): void;
}

/** What the probe reads when no call has failed yet (the connection was lost first): a key nothing writes. */
const PROBE_KEY = revocationKey('outage-probe');

/** How often a degraded store checks whether the primary is back, traffic or not. */
export const PROBE_INTERVAL_MS = 1000;

export class FailoverQuotaStore implements QuotaStore {
  readonly name: string;
  private outageSince: number | undefined;
  /** a key of the last failed call: the probe reads it, so on a cluster it asks the node that failed */
  private probeKey = PROBE_KEY;
  private probeTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private probing = false;

  constructor(
    private readonly primary: QuotaStore,
    private readonly fallback: MemoryQuotaStore,
    private readonly policy: QuotaBackendFailure,
    private readonly logger: Logger,
    private readonly observer?: FailoverObserver,
    /** what the log names as an outage's cause (the error's message, unless the primary's client knows better) */
    private readonly reasonOf: (err: unknown) => string = (err) => (err instanceof Error ? err.message : String(err)),
  ) {
    this.name = primary.name;
  }

  get degraded(): boolean {
    return this.outageSince !== undefined;
  }

  async consume(plan: QuotaPlan, nowMs: number, mode?: ConsumeMode): Promise<QuotaDecision> {
    try {
      const decision = await this.primary.consume(plan, nowMs, mode);
      this.recovered(nowMs);
      return decision;
    } catch (err) {
      this.failed(err, nowMs, plan.revocationKeys[0] ?? plan.counters[0]?.key);
      if (this.policy === 'reject') {
        throw new ApiError(503, 'QUOTA_BACKEND_UNAVAILABLE', 'the quota store is unavailable; try again shortly', undefined, { 'Retry-After': '1' });
      }
      return this.fallback.consume(plan, nowMs, mode);
    }
  }

  /** Settles into the fallback while the primary is down (per policy `memory`); otherwise it is lost and logged. */
  async settle(plan: QuotaPlan, nowMs: number, tokens: number): Promise<void> {
    try {
      await this.primary.settle(plan, nowMs, tokens);
      this.recovered(nowMs);
    } catch (err) {
      this.failed(err, nowMs, plan.counters[0]?.key);
      if (this.policy === 'memory') await this.fallback.settle(plan, nowMs, tokens);
      else this.logger.warn({ tokens }, 'LLM token usage could not be recorded: the quota store is unavailable');
    }
  }

  /** Recorded locally too, so a revocation holds on this instance even while the shared store is down. */
  async revoke(revocationKey: string, expiresAtMs: number, nowMs: number): Promise<void> {
    await this.fallback.revoke(revocationKey, expiresAtMs);
    try {
      await this.primary.revoke(revocationKey, expiresAtMs, nowMs);
      this.recovered(nowMs);
    } catch (err) {
      this.failed(err, nowMs, revocationKey);
      throw new ApiError(503, 'QUOTA_BACKEND_UNAVAILABLE', 'the revocation could not be stored; try again shortly');
    }
  }

  /**
   * The connection to the primary was lost: an outage before any call finds out (an instance whose
   * traffic the deny cache answers might make none for a while), logged and probed from now.
   */
  connectionLost(err: unknown, nowMs: number): void {
    if (this.closed || this.outageSince !== undefined) return;
    this.failed(err, nowMs, undefined);
  }

  private failed(err: unknown, nowMs: number, key: string | undefined): void {
    this.observer?.failed();
    if (key !== undefined) this.probeKey = key;
    if (this.outageSince !== undefined) return;
    this.outageSince = nowMs;
    // a late call failing after close() (an LLM-token settlement, say) must not start probing again
    if (!this.closed) this.startProbing(nowMs);
    this.observer?.degraded(true);
    const reason = this.reasonOf(err);
    this.logger.error({ store: this.primary.name, policy: this.policy, reason }, 'quota store unavailable: ' + (this.policy === 'memory' ? 'using per-instance memory limits' : 'rejecting requests with 503'));
  }

  /**
   * While degraded, asks the primary about once a second whether it is back (a read of a key of the
   * failed call, nothing counted), so the outage ends without traffic: under `reject` /readyz says
   * not ready, and a load balancer sends an instance that is not ready no requests to end it.
   */
  private startProbing(nowMs: number): void {
    const startedAt = Date.now();
    this.probeTimer = setInterval(() => {
      const key = this.probeKey;
      if (this.probing) return;
      this.probing = true;
      const now = nowMs + (Date.now() - startedAt);
      this.primary
        .consume({ counters: [], revocationKeys: [key], expiresAtMs: Number.POSITIVE_INFINITY }, now, 'look')
        .then(
          () => this.recovered(now),
          () => {},
        )
        .finally(() => (this.probing = false));
    }, PROBE_INTERVAL_MS);
    this.probeTimer.unref();
  }

  private recovered(nowMs: number): void {
    if (this.outageSince === undefined) return;
    clearInterval(this.probeTimer);
    this.probeTimer = undefined;
    this.logger.info({ store: this.primary.name, outageMs: nowMs - this.outageSince }, 'quota store recovered');
    this.outageSince = undefined;
    this.observer?.degraded(false);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.probeTimer);
    await Promise.all([this.primary.close(), this.fallback.close()]);
  }
}
