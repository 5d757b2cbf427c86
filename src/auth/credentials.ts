import type { Request } from 'express';
import { invalidCredential } from '../errors.js';
import { fingerprint } from './principal.js';

/** Longest credential accepted; longer ones are refused before any work is done on them. */
export const MAX_CREDENTIAL_LENGTH = 10_000;

/**
 * The caller's credential from `Authorization: Bearer <x>` or `Api-Key: <x>`, never from the
 * query string. Ambiguity is refused rather than guessed: two Authorization headers, or two
 * headers naming different credentials.
 */
export function extractCredential(req: Request): string | undefined {
  const authorization = req.headersDistinct['authorization'];
  const apiKey = req.headersDistinct['api-key'];
  if ((authorization?.length ?? 0) > 1 || (apiKey?.length ?? 0) > 1) {
    throw invalidCredential('send exactly one Authorization or Api-Key header');
  }
  const fromAuthorization = authorization?.[0] === undefined ? undefined : bearerValue(authorization[0]);
  const fromApiKey = apiKey?.[0]?.trim() || undefined;
  if (fromAuthorization !== undefined && fromApiKey !== undefined && fromAuthorization !== fromApiKey) {
    throw invalidCredential('Authorization and Api-Key headers name different credentials');
  }
  const credential = fromAuthorization ?? fromApiKey;
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
