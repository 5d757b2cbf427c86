import { coversServiceId } from '../token/claims.js';
import type { Principal } from './principal.js';

/** The authSecret value that means "pass the caller's own aisbreaker token on" (AIsBreaker's chaining). */
export const FORWARD_TOKEN_PLACEHOLDER = '{{secret}}';

/**
 * The secret to call a service with. A token's own: its first serviceSecrets entry whose
 * serviceId covers the requested one (see coversServiceId; '' covers every service). An operator key's: the
 * server's own secret for the service (e.g. OPENAI_API_KEY), never offered to tokens. An open-access
 * caller's: the bearer it sent, if any.
 */
export function secretForService(principal: Principal, serviceId: string, operatorSecret: string | undefined): string | undefined {
  if (principal.kind === 'key') return operatorSecret;
  if (principal.kind === 'open') return principal.bearer;
  const entry = principal.claims.serviceSecrets.find((s) => coversServiceId(s.serviceId, serviceId));
  if (!entry) return undefined;
  return entry.authSecret === FORWARD_TOKEN_PLACEHOLDER ? principal.token : entry.authSecret;
}
