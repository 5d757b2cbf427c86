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

/**
 * Credential -> req.principal, or a 401 that says exactly what is wrong: missing, invalid
 * (garbage, tampered, unknown key), expired, or bound to another host. Refused credentials count
 * against the caller's address (`failureLimits`): past that limit it gets 429 before any check.
 */
export function authenticate(verifier: TokenVerifier, operatorKeys: () => KeyDirectory, failureLimits: ApiRateLimits): RequestHandler {
  return async (req, _res, next) => {
    req.principal = await failureLimits.countRefusals(clientAddress(req), () => principalFor(req, verifier, operatorKeys()), (err) => err instanceof ApiError && err.status === 401);
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

async function principalFor(req: Request, verifier: TokenVerifier, operatorKeys: KeyDirectory): Promise<Principal> {
  const credential = extractCredential(req);
  if (credential === undefined) {
    throw new ApiError(401, 'MISSING_API_KEY', 'no credential: send "Authorization: Bearer aisbreaker_..." or "Api-Key: ..."');
  }
  if (!credential.startsWith(TOKEN_PREFIX)) {
    req.credentialFingerprint = fingerprint(credential);
    const key = operatorKeys.find(credential);
    if (!key) throw new ApiError(401, 'INVALID_API_KEY', `invalid credential: neither a "${TOKEN_PREFIX}" token nor an API key of this server`);
    return { kind: 'key', key };
  }
  let opened;
  try {
    opened = await verifier.open(credential);
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
  if (hostOfSubject(opened.claims.sub).toLowerCase() !== (req.hostname ?? '').toLowerCase()) {
    throw new ApiError(401, 'WRONG_HOST', 'token was minted for another host and is not valid here');
  }
  return { kind: 'token', claims: opened.claims, token: credential, legacy: opened.legacy };
}
