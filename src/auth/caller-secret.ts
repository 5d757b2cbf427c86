import { ApiError } from '../errors.js';
import type { Principal } from './principal.js';
import { FORWARD_TOKEN_PLACEHOLDER, secretForService } from './service-secret.js';

/**
 * The credential for a gateway the request named itself (aisbreaker:network with `service.url`):
 * the caller's own only. A token's, when its secret for the service is "{{secret}}" (the token
 * itself); an open-access caller's bearer, if it sent one. A secret vaulted in a token and the
 * operator's keys never go there: the caller could read them at a host of its choosing.
 */
export function callerOwnSecret(principal: Principal, serviceId: string): string | undefined {
  if (principal.kind === 'open') return principal.bearer;
  if (principal.kind === 'key') {
    throw new ApiError(403, 'FORBIDDEN', 'an operator API key is never sent to a gateway the request names (service.url): use an aisbreaker token', { field: 'service.url' });
  }
  const secret = secretForService(principal, serviceId, undefined);
  const how = `mint the token with {"serviceId":"aisbreaker:network","authSecret":"${FORWARD_TOKEN_PLACEHOLDER}"} to pass it on`;
  if (secret === undefined) {
    throw new ApiError(401, 'MISSING_API_KEY', `a gateway the request names (service.url) gets only the caller's own token, and this token does not pass itself on: ${how}`, { serviceId });
  }
  if (secret !== principal.token) {
    throw new ApiError(403, 'FORBIDDEN', `this token's secret for "${serviceId}" is never sent to a gateway the request names (service.url); ${how}, or leave out service.url`, { field: 'service.url' });
  }
  return secret;
}
