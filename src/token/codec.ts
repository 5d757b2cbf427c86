import { createHash, randomBytes, type webcrypto } from 'node:crypto';
import { EncryptJWT, decodeProtectedHeader, errors as joseErrors, jwtDecrypt, type JWTPayload } from 'jose';
import type { Scope } from '../scopes.js';
import type { Keyring } from './keyring.js';
import {
  familyOf,
  legacyClaimsSchema,
  subjectForHost,
  tokenClaimsSchema,
  type Ancestor,
  type RequestQuotas,
  type ServiceSecret,
  type TokenClaims,
} from './claims.js';

export const TOKEN_PREFIX = 'aisbreaker_';
export const TOKEN_FORMAT_VERSION = 'aisbreaker-gateway/jwt/v2';
/** Longest token accepted or minted: it must fit an HTTP header comfortably. */
export const MAX_TOKEN_LENGTH = 8192;

export type TokenFailure = 'invalid' | 'expired';

/** Why a token was refused. The message is safe to show: it never quotes the token. */
export class TokenError extends Error {
  constructor(
    readonly failure: TokenFailure,
    message: string,
    /** for an expired token: when it expired (epoch seconds) */
    readonly expiredAt?: number,
  ) {
    super(message);
    this.name = 'TokenError';
  }
}

export interface MintInput {
  host: string;
  requestQuotas: RequestQuotas;
  serviceSecrets: ServiceSecret[];
  lifetimeSeconds: number;
  /** set for a derived token: its parent and the parent's line up to the root */
  parent?: { jti: string; ancestors: Ancestor[] };
  name?: string | undefined;
  description?: string | undefined;
  /** undefined: the default scopes */
  scopes?: Scope[] | undefined;
}

export interface MintedToken {
  token: string;
  claims: TokenClaims;
}

export async function mintToken(input: MintInput, keyring: Keyring, nowMs: number): Promise<MintedToken> {
  const iat = Math.floor(nowMs / 1000);
  const claims: TokenClaims = {
    sub: subjectForHost(input.host),
    iat,
    exp: iat + input.lifetimeSeconds,
    jti: newTokenId(input.parent?.jti),
    requestQuotas: input.requestQuotas,
    serviceSecrets: input.serviceSecrets,
  };
  if (input.parent) claims.ancestors = input.parent.ancestors;
  if (input.name !== undefined) claims.name = input.name;
  if (input.description !== undefined) claims.description = input.description;
  if (input.scopes !== undefined) claims.scopes = input.scopes;
  const jwe = await new EncryptJWT(claims as unknown as JWTPayload)
    .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: keyring.current.kid, ver: TOKEN_FORMAT_VERSION })
    .encrypt(await keyring.current.key);
  return { token: TOKEN_PREFIX + jwe, claims };
}

/** 128 random bits; a derived token's id is prefixed with its family's root id (see familyOf). */
function newTokenId(parentJti: string | undefined): string {
  const own = randomBytes(16).toString('base64url');
  return parentJti === undefined ? own : `${familyOf(parentJti)}.${own}`;
}

export interface OpenedToken {
  claims: TokenClaims;
  /** minted by an original AIsBreaker server */
  legacy: boolean;
}

/**
 * Decrypt and validate a token. Expiry is reported apart from tampering, but only for tokens
 * that decrypted: an unauthenticated token learns nothing but "invalid".
 */
export async function openToken(token: string, keyring: Keyring, nowMs: number): Promise<OpenedToken> {
  if (!token.startsWith(TOKEN_PREFIX)) throw new TokenError('invalid', `token must start with "${TOKEN_PREFIX}"`);
  if (token.length > MAX_TOKEN_LENGTH) throw new TokenError('invalid', `token longer than ${MAX_TOKEN_LENGTH} chars`);
  const jwe = token.slice(TOKEN_PREFIX.length);
  if (!isCanonicalCompact(jwe)) throw new TokenError('invalid', 'token is not a JWE');

  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(jwe);
  } catch {
    throw new TokenError('invalid', 'token is not a JWE');
  }
  if (header.alg !== 'dir') throw new TokenError('invalid', 'token uses an unsupported algorithm');
  // neither we nor AIsBreaker compress tokens: refuse before anything would be inflated
  if (header.zip !== undefined) throw new TokenError('invalid', 'token uses an unsupported header');

  if (header.enc === 'A256GCM' && typeof header.kid === 'string') {
    const key = keyring.keyFor(header.kid);
    if (!key) throw new TokenError('invalid', 'token was not issued with a key this server knows');
    const payload = await decrypt(jwe, await key.key, 'A256GCM', nowMs);
    return { claims: parseClaims(tokenClaimsSchema, payload), legacy: false };
  }

  if (header.enc === 'A128CBC-HS256' && header.kid === undefined && keyring.legacyKeys.length > 0) {
    for (const key of keyring.legacyKeys) {
      let payload: JWTPayload;
      try {
        payload = await decrypt(jwe, key, 'A128CBC-HS256', nowMs);
      } catch (err) {
        if (err instanceof TokenError && err.failure === 'expired') throw err;
        continue; // another keyphrase may fit
      }
      const claims = parseClaims(legacyClaimsSchema, payload);
      return { claims: { ...claims, jti: legacyTokenId(token) }, legacy: true };
    }
  }
  throw new TokenError('invalid', 'token could not be decrypted');
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;

/**
 * Five segments, each the one canonical base64url text of its bytes (no padding, no stray low
 * bits in the last char). Decoders ignore those bits, so without this one JWE would have many
 * token strings, and the verifier cache and legacy token ids are keyed by the string.
 */
function isCanonicalCompact(jwe: string): boolean {
  const segments = jwe.split('.');
  return segments.length === 5 && segments.every((s) => BASE64URL.test(s) && Buffer.from(s, 'base64url').toString('base64url') === s);
}

async function decrypt(jwe: string, key: webcrypto.CryptoKey | Uint8Array, enc: string, nowMs: number): Promise<JWTPayload> {
  try {
    const { payload } = await jwtDecrypt(jwe, key, {
      keyManagementAlgorithms: ['dir'],
      contentEncryptionAlgorithms: [enc],
      currentDate: new Date(nowMs),
    });
    return payload;
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) {
      const exp = err.payload.exp;
      throw new TokenError('expired', 'token has expired', typeof exp === 'number' ? exp : undefined);
    }
    throw new TokenError('invalid', 'token could not be decrypted');
  }
}

function parseClaims<T>(schema: { safeParse(data: unknown): { success: true; data: T } | { success: false } }, payload: JWTPayload): T {
  const result = schema.safeParse(payload);
  if (!result.success) throw new TokenError('invalid', 'token claims are malformed');
  return result.data;
}

/** A stable id for a legacy token, in a namespace of its own (see TOKEN_ID): its counters and revocation need one. */
function legacyTokenId(token: string): string {
  return 'legacy-' + createHash('sha256').update(token).digest('base64url').slice(0, 22);
}
