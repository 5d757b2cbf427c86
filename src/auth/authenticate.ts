import type { Request, RequestHandler } from 'express';
import type { KeyDirectory } from '../keys/directory.js';
import type { ApiRateLimits } from '../quota/api-limits.js';
import { clientAddress } from '../quota/guard.js';
import { ApiError } from '../errors.js';
import { hostOfSubject } from '../token/claims.js';
import { TOKEN_PREFIX, TokenError, type OpenedToken } from '../token/codec.js';
import type { TokenVerifier } from '../token/verifier.js';
import { extractCredential } from './credentials.js';
import { fingerprint, type Principal } from './principal.js';
import type { HostReader } from './request-host.js';

export interface AuthenticationDeps {
  verifier: TokenVerifier;
  /** the current operator keys: they change when the config file does */
  operatorKeys: () => KeyDirectory;
  /** refused credentials per caller address */
  failureLimits: ApiRateLimits;
  /** the host a token must be bound to */
  hostOf: HostReader;
}

/**
 * Credential -> req.principal, or a 401 that says exactly what is wrong: missing, invalid
 * (garbage, tampered, unknown key), expired, or bound to another host. Refused credentials count
 * against the caller's address (`failureLimits`). Past that limit the address gets 429 for every
 * credential that could be guessed (operator keys) and every one refused, but a token that opens
 * and is valid is still served: guessing one is hopeless, and behind a NAT or a proxy one
 * guesser would otherwise lock out every user of the address.
 */
export function authenticate(deps: AuthenticationDeps): RequestHandler {
  return async (req, _res, next) => {
    req.principal = await deps.failureLimits.countRefusals(clientAddress(req), (blocked) => principalFor(req, deps, blocked), (err) => err instanceof ApiError && err.status === 401);
    next();
  };
}

/**
 * A token's fingerprint, hashed once per opened token: the verifier hands out the same object for
 * every byte-identical copy of a token it has cached, and forgets it (and so this entry) on eviction.
 */
const fingerprints = new WeakMap<OpenedToken, string>();
function tokenFingerprint(opened: OpenedToken, token: string): string {
  let known = fingerprints.get(opened);
  if (known === undefined) {
    known = fingerprint(token);
    fingerprints.set(opened, known);
  }
  return known;
}

/** `blocked`: the 429 of an address over the refused-credential limit, if it is. */
async function principalFor(req: Request, deps: AuthenticationDeps, blocked: ApiError | undefined): Promise<Principal> {
  const credential = extractCredential(req);
  if (credential === undefined) {
    throw new ApiError(401, 'MISSING_API_KEY', 'no credential: send "Authorization: Bearer aisbreaker_..." or "Api-Key: ..."');
  }
  if (!credential.startsWith(TOKEN_PREFIX)) {
    req.credentialFingerprint = fingerprint(credential);
    if (blocked) throw blocked;
    const key = deps.operatorKeys().find(credential);
    if (!key) throw new ApiError(401, 'INVALID_API_KEY', `invalid credential: neither a "${TOKEN_PREFIX}" token nor an API key of this server`);
    return { kind: 'key', key };
  }
  let opened;
  try {
    opened = await deps.verifier.open(credential);
  } catch (err) {
    req.credentialFingerprint = fingerprint(credential);
    if (err instanceof TokenError) {
      throw err.failure === 'expired'
        ? new ApiError(401, 'EXPIRED_API_KEY', 'token has expired; mint a new one')
        : new ApiError(401, 'INVALID_API_KEY', `invalid token: ${err.message}`);
    }
    throw err;
  }
  req.credentialFingerprint = tokenFingerprint(opened, credential);
  // host names are case-insensitive (RFC 3986): a token minted as API.example.com is valid on api.example.com
  if (hostOfSubject(opened.claims.sub).toLowerCase() !== (deps.hostOf(req) ?? '').toLowerCase()) {
    throw new ApiError(401, 'WRONG_HOST', 'token was minted for another host and is not valid here');
  }
  return { kind: 'token', claims: opened.claims, token: credential, legacy: opened.legacy };
}
