import type { Response } from 'express';
import { tightestOf, type CounterStatus } from './store.js';

function seconds(ms: number): string {
  return String(Math.max(0, Math.ceil(ms / 1000)));
}

/**
 * Rate-limit headers for the tightest request window, in the IETF draft form (RateLimit-*) and the
 * OpenAI form (x-ratelimit-*-requests) that OpenAI SDK users already read.
 */
export function rateLimitHeaders(limit: number, remaining: number, resetMs: number): Record<string, string> {
  const reset = seconds(resetMs);
  return {
    'RateLimit-Limit': String(limit),
    'RateLimit-Remaining': String(Math.max(0, remaining)),
    'RateLimit-Reset': reset,
    'x-ratelimit-limit-requests': String(limit),
    'x-ratelimit-remaining-requests': String(Math.max(0, remaining)),
    'x-ratelimit-reset-requests': `${reset}s`,
  };
}

/** The headers of an admitted request: tightest request window, and OpenAI's *-tokens for the tightest LLM-token window. */
export function setRateLimitHeaders(res: Response, statuses: CounterStatus[]): void {
  const requests = tightestOf(statuses.filter((s) => s.counter.unit === 'requests'));
  if (requests) res.set(rateLimitHeaders(requests.counter.limit, requests.remaining, requests.resetMs));
  const tokens = tightestOf(statuses.filter((s) => s.counter.unit === 'tokens'));
  if (tokens) {
    res.set({
      'x-ratelimit-limit-tokens': String(tokens.counter.limit),
      'x-ratelimit-remaining-tokens': String(Math.max(0, tokens.remaining)),
      'x-ratelimit-reset-tokens': `${seconds(tokens.resetMs)}s`,
    });
  }
}

/** Ours as Anthropic names them: x-ratelimit-{limit,remaining,reset}-{requests,tokens} -> anthropic-ratelimit-{requests,tokens}-{...}. */
const ANTHROPIC_FIELDS = ['limit', 'remaining', 'reset'] as const;

/**
 * Anthropic's rate-limit headers beside ours, for the Anthropic routes (its SDKs and Claude Code
 * read them): the same limits, the reset as an RFC 3339 time instead of seconds from now.
 */
export function setAnthropicRateLimitHeaders(res: Response, nowMs: number): void {
  for (const unit of ['requests', 'tokens'] as const) {
    for (const field of ANTHROPIC_FIELDS) {
      const value = res.getHeader(`x-ratelimit-${field}-${unit}`);
      if (typeof value !== 'string') continue;
      const anthropicValue = field === 'reset' ? new Date(nowMs + 1000 * parseInt(value, 10)).toISOString().replace(/\.\d{3}Z$/, 'Z') : value;
      res.setHeader(`anthropic-ratelimit-${unit}-${field}`, anthropicValue);
    }
  }
}
