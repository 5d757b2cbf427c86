import type { Logger } from 'pino';
import type { RequestLimits, RequestQuotas } from './token/claims.js';

/**
 * The audit trail: one structured log line per administrative act, marked `"audit": true` so a
 * log shipper can route these lines to a store of their own. Each names who acted by fingerprint
 * and name, never by the credential, and holds no secret.
 */
const EVENTS = {
  'token.minted': 'token minted',
  'token.revoked': 'token revoked',
  'token.introspected': 'token introspected',
  'config.keys_changed': 'operator keys or roles changed',
  'admin.refused': 'administrative act refused',
} as const;
export type AuditEvent = keyof typeof EVENTS;

export function audit(logger: Logger | undefined, event: AuditEvent, fields: Record<string, unknown>): void {
  logger?.info({ audit: true, event, ...fields }, `audit: ${EVENTS[event]}`);
}

const WINDOWS: [keyof RequestLimits, string][] = [
  ['requestsPerMinute', 'requests/minute'],
  ['requestsPerHour', 'requests/hour'],
  ['requestsPerDay', 'requests/day'],
  ['tokensPerMinute', 'tokens/minute'],
  ['tokensPerHour', 'tokens/hour'],
  ['tokensPerDay', 'tokens/day'],
];

/** "client 10 requests/minute; global 100 requests/day" ("unlimited" when none): a token's limits in one line. */
export function limitsSummary(quotas: RequestQuotas): string {
  const part = (scope: string, limits: RequestLimits | undefined): string[] =>
    WINDOWS.flatMap(([field, unit]) => (limits?.[field] === undefined ? [] : [`${scope} ${limits[field]} ${unit}`]));
  const parts = [...part('client', quotas.perClientRequestLimits), ...part('global', quotas.globalRequestLimits)];
  return parts.length > 0 ? parts.join('; ') : 'unlimited';
}
