import type { Request, RequestHandler } from 'express';
import type { Clock } from '../clock.js';
import type { Metrics } from '../metrics.js';
import { ApiError } from '../errors.js';
import { rateLimitHeaders, setRateLimitHeaders } from './headers.js';
import { planForToken, type CounterSpec } from './plan.js';
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
 * The client a per-client quota counts: the address Express reports under the TRUST_PROXY
 * setting, so X-Forwarded-For creates new clients only when the proxy in front is trusted.
 */
export function clientAddress(req: Request): string {
  return req.ip ?? req.socket.remoteAddress ?? 'unknown';
}

/** A limit that was hit: a token's (client/global) or the API's own per-address one. */
export interface LimitHit {
  scope: CounterSpec['scope'] | 'api';
  window: CounterSpec['window'];
  limit: number;
  ancestorJti?: string;
}

export function rateLimited(counter: LimitHit, retryAfterMs: number): ApiError {
  const retryAfterSeconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  const who =
    counter.scope === 'client'
      ? 'for this client'
      : counter.scope === 'api'
        ? 'from this address'
        : counter.ancestorJti === undefined
          ? 'for all clients of this token'
          : 'for all clients of a parent token';
  return new ApiError(
    429,
    'RATE_LIMITED',
    `rate limit exceeded: ${counter.limit} requests per ${counter.window} ${who}; retry in ${retryAfterSeconds} s`,
    { scope: counter.scope, window: counter.window, limit: counter.limit, retryAfterSeconds, ...(counter.ancestorJti ? { ancestor: counter.ancestorJti } : {}) },
    { 'Retry-After': String(retryAfterSeconds), ...rateLimitHeaders(counter.limit, 0, retryAfterMs) },
  );
}

/**
 * Holds each request against its token's quotas (after authentication, before any work):
 * revoked -> 401, over a limit -> 429 naming scope, window and limit; admitted -> headers.
 */
export function quotaGuard(store: QuotaStore, clock: Clock, metrics: Metrics): RequestHandler {
  return async (req, res, next) => {
    const principal = req.principal;
    if (!principal) throw new ApiError(401, 'MISSING_API_KEY', 'no credential');
    const plan = planForToken(principal.claims, clientAddress(req));
    const decision = await store.consume(plan, clock());
    switch (decision.outcome) {
      case 'revoked':
        metrics.quotaDecisions.inc({ outcome: 'revoked', scope: '', window: '' });
        throw new ApiError(401, 'REVOKED_API_KEY', 'token has been revoked');
      case 'denied':
        metrics.quotaDecisions.inc({ outcome: 'denied', scope: decision.counter.scope, window: decision.counter.window });
        throw rateLimited(decision.counter, decision.retryAfterMs);
      case 'admitted':
        metrics.quotaDecisions.inc({ outcome: 'admitted', scope: '', window: '' });
        setRateLimitHeaders(res, decision.statuses);
        if (tokenCounters(plan).length > 0) {
          req.settleLlmTokens = (tokens) => {
            if (!(tokens > 0)) return;
            store.settle(plan, clock(), Math.ceil(tokens)).catch((err: unknown) => req.log?.error({ err }, 'LLM token usage could not be recorded'));
          };
        }
        next();
    }
  };
}
