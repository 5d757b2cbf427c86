import { isIPv4 } from 'node:net';
import ipaddr from 'ipaddr.js';
import type { Request, RequestHandler, Response } from 'express';
import { limitsForModel, type RequestedModel } from '../keys/directory.js';
import { planForKeyModel } from '../keys/plan.js';
import type { Clock } from '../clock.js';
import type { Metrics } from '../metrics.js';
import { ApiError } from '../errors.js';
import { rateLimitHeaders, setRateLimitHeaders } from './headers.js';
import { planForOpenAccess, planForToken, type CounterSpec, type QuotaPlan } from './plan.js';
import type { RequestQuotas } from '../token/claims.js';
import { tokenCounters, type QuotaStore } from './store.js';

declare global {
  // Express's own extension point for request properties
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /**
       * Set when the caller's quotas limit LLM tokens: the service reports the upstream's usage
       * (prompt + completion tokens) here once the answer is complete.
       */
      settleLlmTokens?: (tokens: number) => void;
    }
  }
}

/**
 * The client a per-client quota (and a per-address API limit) counts: the address Express reports
 * under the TRUST_PROXY setting, so X-Forwarded-For creates new clients only when the proxy in
 * front is trusted. An IPv6 client is its /64: one subscriber usually holds a whole /64, and would
 * otherwise be a new client at every address of it. An IPv4 client on a dual-stack socket
 * (::ffff:a.b.c.d) is that one IPv4 address.
 */
export function clientAddress(req: Request): string {
  return clientOf(req.ip ?? req.socket.remoteAddress ?? 'unknown');
}

/**
 * See clientAddress: an address as the client it counts as, written the same whatever its
 * notation, with a port or brackets some proxies add to X-Forwarded-For ("10.1.1.1:1234",
 * "[2001:db8::5]:443") left off: a new connection must not be a new client.
 */
export function clientOf(forwarded: string): string {
  // the common case, checked natively: a plain IPv4 address is its own client (ipaddr.js costs ~1% of a request)
  if (isIPv4(forwarded)) return forwarded;
  const address = withoutPort(forwarded);
  if (!ipaddr.isValid(address)) return forwarded;
  const parsed = ipaddr.process(address); // IPv4-mapped IPv6 -> IPv4
  if (parsed.kind() === 'ipv4') return parsed.toString();
  const network = (parsed as ipaddr.IPv6).toByteArray().fill(0, 8);
  return `${ipaddr.fromByteArray(network).toString()}/64`;
}

/** "[v6]:port" or "[v6]" -> v6, "a.b.c.d:port" -> a.b.c.d; an IPv6 address without brackets has several colons and is left as it is. */
function withoutPort(address: string): string {
  if (address.startsWith('[')) {
    const end = address.indexOf(']');
    return end > 0 ? address.slice(1, end) : address;
  }
  const colon = address.indexOf(':');
  return colon > 0 && colon === address.lastIndexOf(':') ? address.slice(0, colon) : address;
}

export function modelNotAllowed(model: RequestedModel): ApiError {
  return new ApiError(403, 'FORBIDDEN', `model "${model.serviceId}" is not allowed for this API key`, { model: model.serviceId });
}

/** A limit that was hit: a token's (client/global) or the API's own per-address one. */
export interface LimitHit {
  scope: CounterSpec['scope'] | 'api';
  window: CounterSpec['window'];
  /** requests unless said otherwise */
  unit?: CounterSpec['unit'];
  limit: number;
  ancestorJti?: string;
  openAccess?: true;
}

export function rateLimited(counter: LimitHit, retryAfterMs: number): ApiError {
  const retryAfterSeconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  const token = counter.openAccess ? 'open access (callers without a token)' : counter.ancestorJti === undefined ? 'this token' : 'a parent token';
  const who = counter.scope === 'client' ? `for this client of ${token}` : counter.scope === 'api' ? 'from this address' : `for all clients of ${token}`;
  return new ApiError(
    429,
    'RATE_LIMITED',
    `rate limit exceeded: ${counter.limit} ${counter.unit === 'tokens' ? 'LLM tokens' : 'requests'} per ${counter.window} ${who}; retry in ${retryAfterSeconds} s`,
    { scope: counter.scope, window: counter.window, unit: counter.unit ?? 'requests', limit: counter.limit, retryAfterSeconds, ...(counter.ancestorJti ? { ancestor: counter.ancestorJti } : {}) },
    { 'Retry-After': String(retryAfterSeconds), ...rateLimitHeaders(counter.limit, 0, retryAfterMs) },
  );
}

/** The quota enforcement of the request path: a token's quotas up front, an operator key's per model. */
export class QuotaEnforcer {
  constructor(
    private readonly store: QuotaStore,
    private readonly clock: Clock,
    private readonly metrics: Metrics,
    /** the quotas of open-access callers (AISBREAKER_OPEN_ACCESS=on) */
    private readonly openAccessQuotas: RequestQuotas,
  ) {}

  /**
   * Holds each request against its token's quotas, or open access's (after authentication, before any work):
   * revoked -> 401, over a limit -> 429 naming scope, window and limit; admitted -> headers.
   */
  guard(): RequestHandler {
    return async (req, res, next) => {
      const principal = req.principal;
      if (!principal) throw new ApiError(401, 'MISSING_API_KEY', 'no credential');
      // operator keys are limited per model: see admitModel, once the request names one
      if (principal.kind === 'token') await this.hold(req, res, planForToken(principal.claims, clientAddress(req)));
      else if (principal.kind === 'open') await this.hold(req, res, planForOpenAccess(this.openAccessQuotas, clientAddress(req)));
      next();
    };
  }

  /**
   * For an operator key, once the request names its model: 403 when the key's roles do not list
   * it, else the key's limits for it (per key and model, all callers together). Nothing for tokens.
   */
  async admitModel(req: Request, res: Response, model: RequestedModel): Promise<void> {
    const principal = req.principal;
    if (principal?.kind !== 'key') return;
    const allowed = limitsForModel(principal.key, model);
    if (!allowed) throw modelNotAllowed(model);
    const plan = planForKeyModel(principal.key, allowed.name, allowed.limits);
    if (plan.counters.length > 0) await this.hold(req, res, plan);
  }

  private async hold(req: Request, res: Response, plan: QuotaPlan): Promise<void> {
    const decision = await this.store.consume(plan, this.clock());
    req.span?.quotaDecision(decision);
    switch (decision.outcome) {
      case 'revoked':
        this.metrics.countQuotaDecision('revoked');
        throw new ApiError(401, 'REVOKED_API_KEY', 'token has been revoked');
      case 'denied':
        this.metrics.countQuotaDecision('denied', decision.counter.scope, decision.counter.window);
        throw rateLimited(decision.counter, decision.retryAfterMs);
      case 'admitted':
        this.metrics.countQuotaDecision('admitted');
        setRateLimitHeaders(res, decision.statuses);
        if (tokenCounters(plan).length > 0) {
          req.settleLlmTokens = (tokens) => {
            if (!(tokens > 0)) return;
            this.store.settle(plan, this.clock(), Math.ceil(tokens)).catch((err: unknown) => req.log?.error({ err }, 'LLM token usage could not be recorded'));
          };
        }
    }
  }
}
