import type { RequestHandler } from 'express';
import { ApiError } from '../errors.js';
import { hostOfSubject } from '../token/claims.js';
import { TOKEN_PREFIX, TokenError } from '../token/codec.js';
import type { TokenVerifier } from '../token/verifier.js';
import { extractCredential } from './credentials.js';
import { fingerprint } from './principal.js';

/**
 * Credential -> req.principal, or a 401 that says exactly what is wrong:
 * missing, invalid (garbage, tampered, unknown key), expired, or bound to another host.
 */
export function authenticate(verifier: TokenVerifier): RequestHandler {
  return async (req, _res, next) => {
    const credential = extractCredential(req);
    if (credential === undefined) {
      throw new ApiError(401, 'MISSING_API_KEY', 'no credential: send "Authorization: Bearer aisbreaker_..." or "Api-Key: ..."');
    }
    req.credentialFingerprint = fingerprint(credential);
    if (!credential.startsWith(TOKEN_PREFIX)) {
      throw new ApiError(401, 'INVALID_API_KEY', `invalid credential: expected a token starting with "${TOKEN_PREFIX}"`);
    }
    let opened;
    try {
      opened = await verifier.open(credential);
    } catch (err) {
      if (err instanceof TokenError) {
        throw err.failure === 'expired'
          ? new ApiError(401, 'EXPIRED_API_KEY', 'token has expired; mint a new one')
          : new ApiError(401, 'INVALID_API_KEY', `invalid token: ${err.message}`);
      }
      throw err;
    }
    if (hostOfSubject(opened.claims.sub) !== req.hostname) {
      throw new ApiError(401, 'WRONG_HOST', 'token was minted for another host and is not valid here');
    }
    req.principal = { kind: 'token', claims: opened.claims, token: credential, legacy: opened.legacy };
    next();
  };
}
