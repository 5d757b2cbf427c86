import type { Request } from 'express';
import { invalidCredential } from '../errors.js';
import { fingerprint } from './principal.js';

/** Longest credential accepted; longer ones are refused before any work is done on them. */
export const MAX_CREDENTIAL_LENGTH = 10_000;

/** Headers that carry a bare credential: Azure's `Api-Key`, Anthropic's `x-api-key`. */
const KEY_HEADERS = ['api-key', 'x-api-key'] as const;

/**
 * The caller's credential from `Authorization: Bearer <x>`, `Api-Key: <x>` or `x-api-key: <x>`
 * (what the Anthropic SDK sends), never from the query string. Ambiguity is refused rather than
 * guessed: a header given twice, or two headers naming different credentials.
 */
export function extractCredential(req: Request): string | undefined {
  const authorization = req.headersDistinct['authorization'];
  const keyHeaders = KEY_HEADERS.map((name) => req.headersDistinct[name]);
  if ((authorization?.length ?? 0) > 1 || keyHeaders.some((values) => (values?.length ?? 0) > 1)) {
    throw invalidCredential('send exactly one Authorization, Api-Key or x-api-key header');
  }
  const fromAuthorization = authorization?.[0] === undefined ? undefined : bearerValue(authorization[0]);
  const named = [fromAuthorization, ...keyHeaders.map((values) => values?.[0]?.trim() || undefined)].filter((value) => value !== undefined);
  if (named.some((value) => value !== named[0])) {
    throw invalidCredential('Authorization, Api-Key and x-api-key headers name different credentials');
  }
  const credential = named[0];
  if (credential !== undefined && credential.length > MAX_CREDENTIAL_LENGTH) {
    throw invalidCredential(`credential longer than ${MAX_CREDENTIAL_LENGTH} chars`, fingerprint(credential));
  }
  return credential;
}

function bearerValue(header: string): string {
  const match = /^Bearer +(\S+) *$/i.exec(header);
  if (!match?.[1]) {
    throw invalidCredential('Authorization header must be "Bearer <token>"', fingerprint(header));
  }
  return match[1];
}
