import { createHash } from 'node:crypto';
import type { RequestHandler } from 'express';
import { ApiError, missingCredential, missingScope } from '../errors.js';
import type { OperatorKey } from '../keys/directory.js';
import type { Scope } from '../scopes.js';
import { scopesOfToken, type TokenClaims } from '../token/claims.js';

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
  if (!principal) throw missingCredential();
  if (principal.kind !== 'token') throw new ApiError(403, 'FORBIDDEN', `${action} needs an aisbreaker token, not ${principal.kind === 'key' ? 'an operator API key' : 'open access'}`);
  return principal;
}

declare global {
  // Express's own extension point for request properties
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      principal?: Principal;
      /** set by authentication: a safe id of the credential, for log lines */
      credentialFingerprint?: string;
      requestId?: string;
    }
  }
}

/** The only form of a credential that may be logged: 8 hex chars of its sha256. */
export function fingerprint(credential: string): string {
  return createHash('sha256').update(credential).digest('hex').slice(0, 8);
}

/** What an open-access caller may do: call AI services, nothing else. */
const OPEN_ACCESS_SCOPES: readonly Scope[] = ['inference'];

export function scopesOf(principal: Principal): readonly Scope[] {
  if (principal.kind === 'open') return OPEN_ACCESS_SCOPES;
  return principal.kind === 'token' ? scopesOfToken(principal.claims) : principal.key.scopes;
}

/** The credential's name, fixed when it was minted or configured: for log and audit lines. */
export function nameOf(principal: Principal | undefined): string | undefined {
  if (!principal || principal.kind === 'open') return undefined;
  return principal.kind === 'token' ? principal.claims.name : principal.key.name;
}

/** When the credential expires (epoch ms), if it does. */
export function expiresAtMs(principal: Principal): number | undefined {
  if (principal.kind === 'open') return undefined;
  return principal.kind === 'token' ? principal.claims.exp * 1000 : principal.key.expiresAtMs;
}

/** 403 naming the scope unless the (authenticated) caller has it. */
export function assertScope(principal: Principal | undefined, scope: Scope, action: string): Principal {
  if (!principal) throw missingCredential();
  if (!scopesOf(principal).includes(scope)) throw missingScope(scope, action);
  return principal;
}

/** Middleware after authentication: the route needs `scope`. */
export function requireScope(scope: Scope, action: string): RequestHandler {
  return (req, _res, next) => {
    assertScope(req.principal, scope, action);
    next();
  };
}
