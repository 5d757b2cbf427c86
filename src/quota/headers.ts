import type { Response } from 'express';
import type { CounterStatus } from './store.js';

/**
 * Rate-limit headers for the tightest window, in the IETF draft form (RateLimit-*) and the
 * OpenAI form (x-ratelimit-*-requests) that OpenAI SDK users already read.
 */
export function rateLimitHeaders(limit: number, remaining: number, resetMs: number): Record<string, string> {
  const resetSeconds = String(Math.max(0, Math.ceil(resetMs / 1000)));
  return {
    'RateLimit-Limit': String(limit),
    'RateLimit-Remaining': String(Math.max(0, remaining)),
    'RateLimit-Reset': resetSeconds,
    'x-ratelimit-limit-requests': String(limit),
    'x-ratelimit-remaining-requests': String(Math.max(0, remaining)),
    'x-ratelimit-reset-requests': `${resetSeconds}s`,
  };
}

export function setRateLimitHeaders(res: Response, status: CounterStatus): void {
  res.set(rateLimitHeaders(status.counter.limit, status.remaining, status.resetMs));
}
