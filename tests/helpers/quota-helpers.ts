import { expect } from 'vitest';
import { mint, postProcess, processBody } from './gateway.js';

/** Request limits as minted: any of requestsPerMinute / requestsPerHour / requestsPerDay. */
export interface Limits {
  requestsPerMinute?: number;
  requestsPerHour?: number;
  requestsPerDay?: number;
}

/** Mints a token with these quotas (chat:dummy needs no secret, one is given all the same). */
export async function mintLimited(
  baseUrl: string,
  quotas: { client?: Limits; global?: Limits },
  headers: Record<string, string> = {},
): Promise<string> {
  const requestQuotas: Record<string, Record<string, number>> = {};
  if (quotas.client) requestQuotas.perClientRequestLimits = { ...quotas.client };
  if (quotas.global) requestQuotas.globalRequestLimits = { ...quotas.global };
  return mint(
    baseUrl,
    { requestAuthAndQuotas: { requestQuotas, serviceSecrets: [{ serviceId: 'chat:dummy', authSecret: 'sk-dummy-not-used' }] }, expirationTimeSpan: '30d' },
    headers,
  );
}

/** One AIsBreaker request to chat:dummy, optionally claiming a client address via X-Forwarded-For. */
export async function call(baseUrl: string, token: string | undefined, forwardedFor?: string, extra: Record<string, unknown> = {}): Promise<Response> {
  const headers: Record<string, string> = forwardedFor === undefined ? {} : { 'X-Forwarded-For': forwardedFor };
  return postProcess(baseUrl, token, processBody('chat:dummy', 'hello', extra), headers);
}

/** Status of one request; its body is read so the connection is free again. */
export async function statusOf(res: Response): Promise<number> {
  await res.arrayBuffer();
  return res.status;
}

/** Sends `count` requests one after another and returns their statuses. */
export async function statuses(count: number, send: () => Promise<Response>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(await statusOf(await send()));
  return out;
}

export interface ErrorBody {
  success: false;
  error: { code: string; message: string; type: string; details?: Record<string, unknown> };
}

/** The error envelope of a response, checked to be one. */
export async function errorOf(res: Response): Promise<ErrorBody['error']> {
  const body = (await res.json()) as ErrorBody;
  expect(body.success).toBe(false);
  expect(typeof body.error.message).toBe('string');
  return body.error;
}

/** Asserts a 429 RATE_LIMITED naming scope, window and limit; returns Retry-After (s) and details. */
export async function expectRateLimited(
  res: Response,
  expected: { scope: 'client' | 'global' | 'api'; window: string; limit: number },
): Promise<{ retryAfter: number; details: Record<string, unknown>; message: string }> {
  expect(res.status).toBe(429);
  const error = await errorOf(res);
  expect(error.code).toBe('RATE_LIMITED');
  expect(error.type).toBe('rate_limit_error');
  expect(error.details).toMatchObject(expected);
  const retryAfterText = res.headers.get('retry-after');
  expect(retryAfterText).toMatch(/^\d+$/);
  const retryAfter = Number(retryAfterText);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(error.details?.retryAfterSeconds).toBe(retryAfter);
  return { retryAfter, details: error.details ?? {}, message: error.message };
}

export interface RateHeaders {
  limit: number;
  remaining: number;
  reset: number;
}

/** The rate-limit headers of a response, checked to be present in both forms and to agree. */
export function rateHeaders(res: Response): RateHeaders {
  const get = (name: string): string => {
    const value = res.headers.get(name);
    expect(value, `header ${name}`).not.toBeNull();
    return value ?? '';
  };
  const limit = get('ratelimit-limit');
  const remaining = get('ratelimit-remaining');
  const reset = get('ratelimit-reset');
  expect(limit).toMatch(/^\d+$/);
  expect(remaining).toMatch(/^\d+$/);
  expect(reset).toMatch(/^\d+$/);
  expect(get('x-ratelimit-limit-requests')).toBe(limit);
  expect(get('x-ratelimit-remaining-requests')).toBe(remaining);
  expect(get('x-ratelimit-reset-requests')).toBe(`${reset}s`);
  return { limit: Number(limit), remaining: Number(remaining), reset: Number(reset) };
}

/** The value of one Prometheus sample (0 when absent), labels given in their exposition order. */
export async function metric(baseUrl: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const labelText = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(',');
  const prefix = labelText ? `${name}{${labelText}} ` : `${name} `;
  const line = text.split('\n').find((l) => l.startsWith(prefix));
  return line === undefined ? 0 : Number(line.slice(prefix.length));
}

/** Polls `check` until it returns true, or fails after `timeoutMs`. */
export async function eventually(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Counts of each status in a list. */
export function tally(list: number[]): Record<number, number> {
  const out: Record<number, number> = {};
  for (const s of list) out[s] = (out[s] ?? 0) + 1;
  return out;
}
