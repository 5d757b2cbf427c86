import { createHash } from 'node:crypto';
import type { TokenClaims } from '../token/claims.js';

/** Who is calling, once the credential checked out. */
export interface TokenPrincipal {
  kind: 'token';
  claims: TokenClaims;
  /** the bearer token as received: needed only to chain it on with "{{secret}}" */
  token: string;
  legacy: boolean;
}

export type Principal = TokenPrincipal;

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
