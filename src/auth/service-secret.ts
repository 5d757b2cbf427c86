import type { TokenPrincipal } from './principal.js';

/** The authSecret value that means "pass the caller's own aisbreaker token on" (AIsBreaker's chaining). */
export const FORWARD_TOKEN_PLACEHOLDER = '{{secret}}';

/**
 * The secret the token carries for a service: its first serviceSecrets entry whose serviceId
 * is a prefix of the requested one ('' matches every service).
 */
export function secretForService(principal: TokenPrincipal, serviceId: string): string | undefined {
  const entry = principal.claims.serviceSecrets.find((s) => serviceId.startsWith(s.serviceId));
  if (!entry) return undefined;
  return entry.authSecret === FORWARD_TOKEN_PLACEHOLDER ? principal.token : entry.authSecret;
}
