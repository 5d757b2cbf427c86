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
  /** serve callers without a token or operator key as open-access principals (AISBREAKER_OPEN_ACCESS) */
  openAccess?: boolean;
}

/**
 * Credential -> req.principal, or a 401 that says exactly what is wrong: missing, invalid
 * (garbage, tampered, unknown key), expired, or bound to another host. Refused credentials count
 * against the caller's address (`failureLimits`). Past that limit the address gets 429 for every
 * credential that could be guessed (operator keys) and every one refused, but a token that opens
 * and is valid is still served: guessing one is hopeless, and behind a NAT or a proxy one
 * guesser would otherwise lock out every user of the address. With `openAccess` (the serving
 * routes under AISBREAKER_OPEN_ACCESS=on), a caller without a token or operator key is an
 * open-access principal instead; a bad aisbreaker token is still refused.
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

/** AIsBreaker clients' users match on these words, so every unusable token's message starts with them. */
const UNUSABLE_TOKEN = 'Invalid aisbreaker access token';
const HOW_TO_GET_IN = 'mint a token with POST /api/v1/oauth/token; callers without one are served only with AISBREAKER_OPEN_ACCESS=on';

/** `blocked`: the 429 of an address over the refused-credential limit, if it is. */
async function principalFor(req: Request, deps: AuthenticationDeps, blocked: ApiError | undefined): Promise<Principal> {
  const credential = extractCredential(req);
  if (credential === undefined) {
    if (deps.openAccess) return { kind: 'open', bearer: undefined };
    throw new ApiError(401, 'MISSING_API_KEY', `no credential: send "Authorization: Bearer aisbreaker_..." or "Api-Key: ..."; ${HOW_TO_GET_IN}`);
  }
  if (!credential.startsWith(TOKEN_PREFIX)) {
    req.credentialFingerprint = fingerprint(credential);
    if (blocked) throw blocked;
    const key = deps.operatorKeys().find(credential);
    if (key) return { kind: 'key', key };
    if (deps.openAccess) return { kind: 'open', bearer: credential };
    throw new ApiError(401, 'INVALID_API_KEY', `invalid credential: neither a "${TOKEN_PREFIX}" token nor an API key of this server; ${HOW_TO_GET_IN}`);
  }
  let opened;
  try {
    opened = await deps.verifier.open(credential);
  } catch (err) {
    req.credentialFingerprint = fingerprint(credential);
    if (err instanceof TokenError) {
      throw err.failure === 'expired'
        ? new ApiError(401, 'EXPIRED_API_KEY', `${UNUSABLE_TOKEN}: it has expired; mint a new one`)
        : new ApiError(401, 'INVALID_API_KEY', `${UNUSABLE_TOKEN}: ${err.message}`);
    }
    throw err;
  }
  req.credentialFingerprint = tokenFingerprint(opened, credential);
  // host names are case-insensitive (RFC 3986): a token minted as API.example.com is valid on api.example.com
  if (hostOfSubject(opened.claims.sub).toLowerCase() !== (deps.hostOf(req) ?? '').toLowerCase()) {
    throw new ApiError(401, 'WRONG_HOST', `${UNUSABLE_TOKEN}: it was minted for another host and is not valid here`);
  }
  return { kind: 'token', claims: opened.claims, token: credential, legacy: opened.legacy };
}
