import type { Request, RequestHandler, Response } from 'express';
import type { Clock } from '../clock.js';
import { keyExpired, type KeyDirectory } from '../keys/directory.js';
import type { ApiRateLimits } from '../quota/api-limits.js';
import { clientAddress } from '../quota/guard.js';
import { ApiError, expiredCredential, invalidCredential, missingCredential } from '../errors.js';
import { hostOfSubject } from '../token/claims.js';
import { TOKEN_PREFIX, TokenError, type OpenedToken } from '../token/codec.js';
import type { TokenVerifier } from '../token/verifier.js';
import { extractCredential } from './credentials.js';
import { expiresAtMs, fingerprint, type Principal } from './principal.js';
import type { HostReader } from './request-host.js';

export interface AuthenticationDeps {
  verifier: TokenVerifier;
  /** the current operator keys: they change when the config file does */
  operatorKeys: () => KeyDirectory;
  /** refused credentials per caller address */
  failureLimits: ApiRateLimits;
  /** the host a token must be bound to */
  hostOf: HostReader;
  clock: Clock;
  /** a credential that expires within this many ms gets EXPIRY_HEADER on its responses (0: never) */
  expiryNoticeMs: number;
  /** serve callers without a token or operator key as open-access principals (AISBREAKER_OPEN_ACCESS) */
  openAccess?: boolean;
}

/** Says when the credential expires (ISO 8601), on responses to one that expires soon. */
export const EXPIRY_HEADER = 'Aisbreaker-Credential-Expires-At';

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
  return async (req, res, next) => {
    const principal = await deps.failureLimits.countRefusals(clientAddress(req), (blocked) => principalFor(req, deps, blocked), (err) => err instanceof ApiError && err.status === 401);
    req.principal = principal;
    noticeExpiry(res, principal, deps);
    next();
  };
}

/** "Rotate before expiration": the header on every response to a credential that expires soon. */
function noticeExpiry(res: Response, principal: Principal, deps: AuthenticationDeps): void {
  const expires = expiresAtMs(principal);
  if (expires !== undefined && expires - deps.clock() <= deps.expiryNoticeMs) res.setHeader(EXPIRY_HEADER, new Date(expires).toISOString());
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
    throw missingCredential(`no credential: send "Authorization: Bearer aisbreaker_..." or "Api-Key: ..."; ${HOW_TO_GET_IN}`);
  }
  if (!credential.startsWith(TOKEN_PREFIX)) {
    const keyId = fingerprint(credential);
    req.credentialFingerprint = keyId;
    if (blocked) throw blocked;
    const key = deps.operatorKeys().find(credential);
    if (key) {
      if (keyExpired(key, deps.clock())) throw expiredCredential('API key has expired; ask the operator for a new one', key.expiresAtMs);
      return { kind: 'key', key };
    }
    if (deps.openAccess) return { kind: 'open', bearer: credential };
    throw invalidCredential(`invalid credential: neither a "${TOKEN_PREFIX}" token nor an API key of this server; ${HOW_TO_GET_IN}`, keyId);
  }
  let opened;
  try {
    opened = await deps.verifier.open(credential);
  } catch (err) {
    const keyId = fingerprint(credential);
    req.credentialFingerprint = keyId;
    if (err instanceof TokenError) {
      throw err.failure === 'expired'
        ? expiredCredential(`${UNUSABLE_TOKEN}: it has expired; mint a new one`, err.expiredAt === undefined ? undefined : err.expiredAt * 1000)
        : invalidCredential(`${UNUSABLE_TOKEN}: ${err.message}`, keyId);
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
