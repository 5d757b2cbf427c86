import type { ApiLimit } from '../config.js';
import { familyOf, type RequestLimits, type RequestQuotas, type TokenClaims } from '../token/claims.js';
import { WINDOW_MS, type WindowName } from './windows.js';

/**
 * What one request must be checked against: a counter per limited window and scope of the token,
 * plus the counters of its ancestors (a derived token spends its parents' quotas too), and
 * the revocation markers of the token and its ancestors. Every key of a token family carries the
 * root's jti as hash tag `{root}`, so one Redis script can touch them all, on Redis Cluster too.
 */

export type QuotaScope = 'client' | 'global';
/** requests are counted as they come; LLM tokens after the answer, from the upstream's usage */
export type QuotaUnit = 'requests' | 'tokens';

export interface CounterSpec {
  key: string;
  scope: QuotaScope;
  window: WindowName;
  unit: QuotaUnit;
  limit: number;
  windowMs: number;
  /** set on an ancestor's counter that a derived token spends too */
  ancestorJti?: string;
  /** set on the counters of open access (AISBREAKER_OPEN_ACCESS), which belong to no token */
  openAccess?: true;
}

export interface QuotaPlan {
  counters: CounterSpec[];
  /** any of them set means revoked: the token's own first, then its ancestors' */
  revocationKeys: string[];
  /** the token's expiry: no decision about it matters after that */
  expiresAtMs: number;
}

const LIMIT_FIELDS: [keyof RequestLimits, QuotaUnit, WindowName][] = [
  ['requestsPerMinute', 'requests', 'minute'],
  ['requestsPerHour', 'requests', 'hour'],
  ['requestsPerDay', 'requests', 'day'],
  ['tokensPerMinute', 'tokens', 'minute'],
  ['tokensPerHour', 'tokens', 'hour'],
  ['tokensPerDay', 'tokens', 'day'],
];

export const KEY_PREFIX = 'aisbgw';

function tokenKeyBase(jti: string): string {
  return `${KEY_PREFIX}:{${familyOf(jti)}}:${jti}`;
}

export function revocationKey(jti: string): string {
  return `${tokenKeyBase(jti)}:revoked`;
}

function countersFor(limits: RequestLimits | undefined, scope: QuotaScope, keyBase: string, ancestorJti?: string): CounterSpec[] {
  if (!limits) return [];
  const counters: CounterSpec[] = [];
  for (const [field, unit, window] of LIMIT_FIELDS) {
    const limit = limits[field];
    if (limit === undefined) continue;
    const key = unit === 'requests' ? `${keyBase}:${window}` : `${keyBase}:t:${window}`;
    const counter: CounterSpec = { key, scope, window, unit, limit, windowMs: WINDOW_MS[window] };
    if (ancestorJti !== undefined) counter.ancestorJti = ancestorJti;
    counters.push(counter);
  }
  return counters;
}

/** The plan for a request by client `clientId` (its address) with a token holding `claims`. */
export function planForToken(claims: Pick<TokenClaims, 'jti' | 'exp' | 'requestQuotas' | 'ancestors'>, clientId: string): QuotaPlan {
  const base = tokenKeyBase(claims.jti);
  const ancestors = claims.ancestors ?? [];
  return {
    counters: [
      ...countersFor(claims.requestQuotas.perClientRequestLimits, 'client', `${base}:c:${clientId}`),
      ...countersFor(claims.requestQuotas.globalRequestLimits, 'global', `${base}:g`),
      ...ancestors.flatMap((a) => [
        ...countersFor(a.perClientRequestLimits, 'client', `${tokenKeyBase(a.jti)}:c:${clientId}`, a.jti),
        ...countersFor(a.globalRequestLimits, 'global', `${tokenKeyBase(a.jti)}:g`, a.jti),
      ]),
    ],
    revocationKeys: [claims.jti, ...ancestors.map((a) => a.jti)].map(revocationKey),
    expiresAtMs: claims.exp * 1000,
  };
}

/** Open access (AISBREAKER_OPEN_ACCESS=on) counts like one token that every open caller shares. */
const OPEN_ACCESS_ID = 'open-access';
const REQUEST_LIMIT_FIELD: Partial<Record<WindowName, keyof RequestLimits>> = { minute: 'requestsPerMinute', hour: 'requestsPerHour', day: 'requestsPerDay' };

/** OPEN_ACCESS_CLIENT_LIMITS / OPEN_ACCESS_GLOBAL_LIMITS as a token's request quotas. */
export function openAccessQuotas(clientLimits: ApiLimit[], globalLimits: ApiLimit[]): RequestQuotas {
  const limitsOf = (limits: ApiLimit[]): RequestLimits => Object.fromEntries(limits.flatMap((l) => (REQUEST_LIMIT_FIELD[l.window] ? [[REQUEST_LIMIT_FIELD[l.window], l.count]] : [])));
  return { perClientRequestLimits: limitsOf(clientLimits), globalRequestLimits: limitsOf(globalLimits) };
}

/** The plan of an open-access request by client `clientId`: nothing to revoke, no expiry. */
export function planForOpenAccess(quotas: RequestQuotas, clientId: string): QuotaPlan {
  const base = tokenKeyBase(OPEN_ACCESS_ID);
  return {
    counters: [...countersFor(quotas.perClientRequestLimits, 'client', `${base}:c:${clientId}`), ...countersFor(quotas.globalRequestLimits, 'global', `${base}:g`)].map((c) => ({ ...c, openAccess: true as const })),
    revocationKeys: [],
    expiresAtMs: Number.MAX_SAFE_INTEGER,
  };
}
