import { createHash } from 'node:crypto';
import { ApiError } from '../errors.js';
import type { OperatorKey } from '../keys/directory.js';
import type { TokenClaims } from '../token/claims.js';

/** Who is calling, once the credential checked out. */
export interface TokenPrincipal {
  kind: 'token';
  claims: TokenClaims;
  /** the bearer token as received: needed only to chain it on with "{{secret}}" */
  token: string;
  legacy: boolean;
}

/** An operator API key from the config file: its project and the limits of its roles. */
export interface KeyPrincipal {
  kind: 'key';
  key: OperatorKey;
}

/**
 * A caller without an aisbreaker token, served under the open-access quotas
 * (AISBREAKER_OPEN_ACCESS=on, as the original AIsBreaker server). A bearer it sent that is
 * neither a token nor an operator key is its own secret for the service it asks for (an OpenAI key, ...).
 */
export interface OpenPrincipal {
  kind: 'open';
  bearer: string | undefined;
}

export type Principal = TokenPrincipal | KeyPrincipal | OpenPrincipal;

/** The caller's token, for endpoints that only aisbreaker tokens can use. */
export function requireTokenPrincipal(principal: Principal | undefined, action: string): TokenPrincipal {
  if (!principal) throw new ApiError(401, 'MISSING_API_KEY', 'no credential');
  if (principal.kind !== 'token') throw new ApiError(403, 'FORBIDDEN', `${action} needs an aisbreaker token, not ${principal.kind === 'key' ? 'an operator API key' : 'open access'}`);
  return principal;
}

declare global {
  // Express's own extension point for request properties
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      principal?: Principal;
      /** set by the request logger: a safe id of the credential, for log lines */
      credentialFingerprint?: string;
      requestId?: string;
    }
  }
}

/** The only form of a credential that may be logged: 8 hex chars of its sha256. */
export function fingerprint(credential: string): string {
  return createHash('sha256').update(credential).digest('hex').slice(0, 8);
}
