import type { RequestLimits, TokenClaims } from '../token/claims.js';
import { WINDOW_MS, type WindowName } from './windows.js';

/**
 * What one request must be checked against: a counter per limited window and scope, all keyed
 * under the token's `jti`. Keys share the hash tag `{jti}`, so one Redis script can touch them
 * all, on Redis Cluster too.
 */

export type QuotaScope = 'client' | 'global';

export interface CounterSpec {
  key: string;
  scope: QuotaScope;
  window: WindowName;
  limit: number;
  windowMs: number;
}

export interface QuotaPlan {
  counters: CounterSpec[];
  /** set when the token is revoked (the revocation list lives in the same store) */
  revocationKey: string;
  /** the token's expiry: no decision about it matters after that */
  expiresAtMs: number;
}

const LIMIT_FIELDS: Record<WindowName, keyof RequestLimits> = {
  minute: 'requestsPerMinute',
  hour: 'requestsPerHour',
  day: 'requestsPerDay',
};

export const KEY_PREFIX = 'aisbgw';

export function revocationKey(jti: string): string {
  return `${KEY_PREFIX}:{${jti}}:revoked`;
}

function countersFor(limits: RequestLimits | undefined, scope: QuotaScope, keyBase: string): CounterSpec[] {
  if (!limits) return [];
  const counters: CounterSpec[] = [];
  for (const window of Object.keys(LIMIT_FIELDS) as WindowName[]) {
    const limit = limits[LIMIT_FIELDS[window]];
    if (limit !== undefined) counters.push({ key: `${keyBase}:${window}`, scope, window, limit, windowMs: WINDOW_MS[window] });
  }
  return counters;
}

/** The plan for a request by client `clientId` (its address) with a token holding `claims`. */
export function planForToken(claims: Pick<TokenClaims, 'jti' | 'exp' | 'requestQuotas'>, clientId: string): QuotaPlan {
  const base = `${KEY_PREFIX}:{${claims.jti}}`;
  return {
    counters: [
      ...countersFor(claims.requestQuotas.perClientRequestLimits, 'client', `${base}:c:${clientId}`),
      ...countersFor(claims.requestQuotas.globalRequestLimits, 'global', `${base}:g`),
    ],
    revocationKey: revocationKey(claims.jti),
    expiresAtMs: claims.exp * 1000,
  };
}
