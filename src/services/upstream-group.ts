import type { Dispatcher } from 'undici';
import { sleepUnlessAborted, systemClock, type Clock } from '../clock.js';
import { UpstreamError, type Upstream, type UpstreamRequest } from './upstream.js';

/** How a group picks the upstream of a call. */
export type Balance = 'weighted' | 'fallback' | 'least-busy';

export interface RetryPolicy {
  /** calls in all, the first included */
  attempts: number;
  /** statuses worth another attempt besides 429 (e.g. 500, 503): the operator knows they come before any answer */
  on: number[];
  /** the first wait; each further one doubles, all jittered (x0.5 to x1.5) */
  backoffMs: number;
}

export interface CircuitPolicy {
  /** failures in a row that take an upstream out of rotation */
  failures: number;
  /** how long it stays out before one probe call may try it again */
  cooldownMs: number;
}

export interface GroupMember {
  origin: Upstream;
  /** how the upstream is named in metrics and logs: never its URL (it may hold a key) */
  name: string;
  weight: number;
  /** the operator's key for this upstream (its operatorKeyEnv), used for operator API keys */
  operatorKey?: string;
}

/** What a group tells about its upstreams: metrics and log lines (names only, never a secret). */
export interface UpstreamObserver {
  attempt(service: string, upstream: string): void;
  failed(service: string, upstream: string, kind: string): void;
  retried(service: string): void;
  circuit(service: string, upstream: string, open: boolean): void;
}

export interface GroupOptions {
  serviceId: string;
  members: GroupMember[];
  balance: Balance;
  retry: RetryPolicy;
  circuit: CircuitPolicy | undefined;
  /** the whole call's budget: no retry waits past it (the service's first-byte timeout) */
  budgetMs: number;
  observer: UpstreamObserver | undefined;
  clock?: Clock;
  random?: () => number;
}

/** The longest Retry-After a retry honours; a longer one is passed on to the caller instead. */
const MAX_HONOURED_RETRY_AFTER_MS = 5_000;

interface MemberState {
  member: GroupMember;
  inFlight: number;
  failuresInRow: number;
  /** out of rotation until then (circuit open); a probe is under way while `probing` */
  openUntil: number;
  probing: boolean;
}

/**
 * Several upstreams serving one service: the call goes to one chosen by `balance`, and on a
 * failure that surely produced no answer (no connection, a reset before the response, 429, or a
 * status the operator lists) to the next one, after a jittered backoff, within the call's budget.
 * It never retries once a response has begun: post() resolves with the first 2xx response, and
 * whatever follows (a stream breaking mid-way) is the caller's. An upstream failing
 * `circuit.failures` times in a row is left out for the cooldown, then probed with one call;
 * with every upstream out, the call fails at once with 503. State is per gateway instance.
 */
export class UpstreamGroup implements Upstream {
  private readonly states: MemberState[];
  private readonly clock: Clock;
  private readonly random: () => number;
  /** position in the weighted rotation (smooth weighted round-robin, as nginx does) */
  private readonly current: number[];

  constructor(private readonly options: GroupOptions) {
    this.states = options.members.map((member) => ({ member, inFlight: 0, failuresInRow: 0, openUntil: 0, probing: false }));
    this.current = options.members.map(() => 0);
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
  }

  get serviceId(): string {
    return this.options.serviceId;
  }

  post(path: string, body: string | Buffer, secret: string | undefined, signal: AbortSignal, byOperatorKey = false, traceHeaders?: Record<string, string>): Promise<Dispatcher.ResponseData> {
    return this.send({ method: 'POST', path, body }, secret, signal, byOperatorKey, traceHeaders);
  }

  async send(request: UpstreamRequest, secret: string | undefined, signal: AbortSignal, byOperatorKey = false, traceHeaders?: Record<string, string>): Promise<Dispatcher.ResponseData> {
    const deadline = this.clock() + this.options.budgetMs;
    const tried = new Set<MemberState>();
    let lastError: unknown;
    for (let attempt = 1; attempt <= this.options.retry.attempts; attempt++) {
      const state = this.pick(tried);
      if (!state) break;
      tried.add(state);
      const upstream = state.member.name;
      this.options.observer?.attempt(this.serviceId, upstream);
      state.inFlight++;
      let response: Dispatcher.ResponseData;
      try {
        response = await state.member.origin.send(request, byOperatorKey ? (state.member.operatorKey ?? secret) : secret, signal, byOperatorKey, traceHeaders);
      } catch (err) {
        state.inFlight--;
        if (signal.aborted) {
          state.probing = false; // the caller left: no verdict on the upstream
          throw err;
        }
        lastError = err;
        const kind = err instanceof UpstreamError ? err.kind : 'internal';
        this.options.observer?.failed(this.serviceId, upstream, kind);
        // a 4xx is an answer: the upstream is up
        if (countsAgainstCircuit(err)) this.failed(state);
        else this.succeeded(state);
        const wait = this.retryWait(err, attempt);
        if (wait === undefined || attempt === this.options.retry.attempts || this.clock() + wait > deadline) throw err;
        this.options.observer?.retried(this.serviceId);
        if (wait > 0) await sleepUnlessAborted(wait, signal);
        // every upstream tried once: the next attempt may go to one of them again
        if (tried.size === this.states.length) tried.clear();
        continue;
      }
      this.succeeded(state);
      response.body.once('close', () => state.inFlight--);
      return response;
    }
    throw lastError ?? this.allOpen();
  }

  readAll(body: Dispatcher.ResponseData['body'], signal: AbortSignal): Promise<Buffer> {
    return this.first().readAll(body, signal);
  }

  truncated(): UpstreamError {
    return this.first().truncated();
  }

  tooLarge(): UpstreamError {
    return this.first().tooLarge();
  }

  parseAnswer(text: string): unknown {
    return this.first().parseAnswer(text);
  }

  failure(err: unknown, signal: AbortSignal): unknown {
    return this.first().failure(err, signal);
  }

  async close(): Promise<void> {
    await Promise.all(this.states.map((state) => state.member.origin.close()));
  }

  /** The upstream for the next attempt, preferring those not tried yet; undefined when every circuit is open. */
  private pick(tried: Set<MemberState>): MemberState | undefined {
    const now = this.clock();
    const usable = this.states.filter((state) => this.admits(state, now));
    const candidates = usable.filter((state) => !tried.has(state));
    const pool = candidates.length > 0 ? candidates : usable;
    if (pool.length === 0) return undefined;
    let chosen: MemberState;
    switch (this.options.balance) {
      case 'fallback':
        chosen = pool[0] as MemberState;
        break;
      case 'least-busy':
        chosen = pool.reduce((best, state) => (state.inFlight < best.inFlight ? state : best));
        break;
      case 'weighted':
        chosen = this.weighted(pool);
    }
    if (chosen.openUntil > 0) chosen.probing = true; // cooled down: this call is its probe
    return chosen;
  }

  /** Smooth weighted round-robin over `pool`: each gains its weight, the richest is chosen and pays the total. */
  private weighted(pool: MemberState[]): MemberState {
    let total = 0;
    let best: MemberState | undefined;
    let bestCurrent = -Infinity;
    for (const state of pool) {
      const i = this.states.indexOf(state);
      const weight = state.member.weight;
      total += weight;
      this.current[i] = (this.current[i] ?? 0) + weight;
      if ((this.current[i] ?? 0) > bestCurrent) {
        bestCurrent = this.current[i] ?? 0;
        best = state;
      }
    }
    const chosen = best as MemberState;
    const at = this.states.indexOf(chosen);
    this.current[at] = (this.current[at] ?? 0) - total;
    return chosen;
  }

  /** Closed circuit, or open but cooled down with no probe under way. */
  private admits(state: MemberState, now: number): boolean {
    if (state.openUntil === 0) return true;
    return state.openUntil <= now && !state.probing;
  }

  private failed(state: MemberState): void {
    const circuit = this.options.circuit;
    state.failuresInRow++;
    if (!circuit) return;
    const wasOpen = state.openUntil > 0;
    if (state.probing || state.failuresInRow >= circuit.failures) {
      state.probing = false;
      state.openUntil = this.clock() + circuit.cooldownMs;
      if (!wasOpen) this.options.observer?.circuit(this.serviceId, state.member.name, true);
    }
  }

  private succeeded(state: MemberState): void {
    state.failuresInRow = 0;
    state.probing = false;
    if (state.openUntil > 0) {
      state.openUntil = 0;
      this.options.observer?.circuit(this.serviceId, state.member.name, false);
    }
  }

  /** How long to wait before another attempt after `err`; undefined when it must not be retried. */
  private retryWait(err: unknown, attempt: number): number | undefined {
    if (!(err instanceof UpstreamError) || !isRetryable(err, this.options.retry.on)) return undefined;
    const backoff = this.options.retry.backoffMs * 2 ** (attempt - 1) * (0.5 + this.random());
    const retryAfter = retryAfterMs(err, this.clock());
    if (retryAfter === undefined) return Math.round(backoff);
    // a long Retry-After is the upstream's answer for the caller, not a wait for us
    return retryAfter <= MAX_HONOURED_RETRY_AFTER_MS ? Math.max(retryAfter, Math.round(backoff)) : undefined;
  }

  private allOpen(): UpstreamError {
    const now = this.clock();
    const reopens = Math.min(...this.states.map((state) => state.openUntil)) - now;
    const seconds = Math.max(1, Math.ceil(reopens / 1000));
    return new UpstreamError(
      503,
      'UPSTREAM_UNAVAILABLE',
      'circuit-open',
      `service "${this.serviceId}": every upstream is out of rotation after repeated failures; retry in ${seconds} s`,
      { retryAfterSeconds: seconds },
      { 'Retry-After': String(seconds) },
    );
  }

  private first(): Upstream {
    return (this.states[0] as MemberState).member.origin;
  }
}

/** Failures that surely produced no answer: no connection, a reset before any response, 429, or a listed status. */
function isRetryable(err: UpstreamError, statuses: number[]): boolean {
  if (err.kind === 'unavailable' || err.kind === 'connection' || err.kind === 'connect-timeout') return true;
  const status = Number(err.details?.upstreamStatus);
  return status === 429 || statuses.includes(status);
}

/**
 * Network failures, timeouts, 502, 503 and 504 count against an upstream's circuit: they say the
 * upstream is in trouble. A 500 may as well be one request's (an input that crashes a model
 * server), and one caller's requests must not take the upstream out for everybody; 4xx answers
 * are the caller's business.
 */
function countsAgainstCircuit(err: unknown): boolean {
  if (!(err instanceof UpstreamError)) return false;
  const status = Number(err.details?.upstreamStatus);
  return Number.isNaN(status) || status === 502 || status === 503 || status === 504;
}

function retryAfterMs(err: UpstreamError, nowMs: number): number | undefined {
  const value = err.headers?.['Retry-After'];
  if (value === undefined) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}

