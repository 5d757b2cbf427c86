import { z } from 'zod/v4';
import { DEFAULT_TOKEN_SCOPES, descriptionSchema, nameSchema, scopesSchema, type Scope } from '../scopes.js';

/**
 * The claims inside an `aisbreaker_` token. The quota and secret parts keep AIsBreaker's field
 * names so that its tokens and clients work unchanged.
 */

/** Highest count a window may allow: far above any real need, far below float imprecision. */
export const MAX_WINDOW_LIMIT = 1_000_000_000;
export const MAX_SERVICE_SECRETS = 16;
export const MAX_SERVICE_ID_LENGTH = 128;
export const MAX_AUTH_SECRET_LENGTH = 2048;

const windowLimit = z
  .int({ error: 'must be a positive integer' })
  .min(1, { error: 'must be a positive integer' })
  .max(MAX_WINDOW_LIMIT, { error: `must be at most ${MAX_WINDOW_LIMIT}` });

/** An omitted window means "no limit in that window". Unknown keys are refused: a typo must not silently lift a limit. */
export const requestLimitsSchema = z.strictObject({
  requestsPerMinute: windowLimit.optional(),
  requestsPerHour: windowLimit.optional(),
  requestsPerDay: windowLimit.optional(),
  /** LLM tokens (prompt + completion, from the upstream's usage) */
  tokensPerMinute: windowLimit.optional(),
  tokensPerHour: windowLimit.optional(),
  tokensPerDay: windowLimit.optional(),
});
export type RequestLimits = z.infer<typeof requestLimitsSchema>;

export const requestQuotasSchema = z.strictObject({
  perClientRequestLimits: requestLimitsSchema.optional(),
  globalRequestLimits: requestLimitsSchema.optional(),
});
export type RequestQuotas = z.infer<typeof requestQuotasSchema>;

export const serviceSecretSchema = z.strictObject({
  /** the service (or service family at a "/" boundary) this secret is for; '' is a catch-all */
  serviceId: z.string({ error: 'must be a string' }).max(MAX_SERVICE_ID_LENGTH, { error: `must be at most ${MAX_SERVICE_ID_LENGTH} chars` }),
  /**
   * the third-party secret, or "{{secret}}": pass the incoming aisbreaker token on. It may be
   * empty, as in the AIsBreaker docs' mint body ({"serviceId": "chat:dummy", "authSecret": ""}).
   */
  authSecret: z.string({ error: 'must be a string' }).max(MAX_AUTH_SECRET_LENGTH, { error: `must be at most ${MAX_AUTH_SECRET_LENGTH} chars` }),
});
export type ServiceSecret = z.infer<typeof serviceSecretSchema>;

export const serviceSecretsSchema = z
  .array(serviceSecretSchema, { error: 'must be an array' })
  .max(MAX_SERVICE_SECRETS, { error: `at most ${MAX_SERVICE_SECRETS} entries` });

/**
 * Token ids: 128 random bits in base64url for a minted token, "legacy-" and 22 chars of a hash of
 * the token for a legacy one (its own namespace: never taken from a legacy payload), and a derived
 * token's "<family root id>.<own 128 bits>". Checked on every token we open, so no id of another
 * form can reach revocation marks or quota counters.
 */
export const TOKEN_ID = /^(?:legacy-)?[A-Za-z0-9_-]{22}(?:\.[A-Za-z0-9_-]{22})?$/;
const tokenIdSchema = z.string().regex(TOKEN_ID);

/** How many generations of derived tokens may stand below a minted one. */
export const MAX_DERIVATION_DEPTH = 3;

/**
 * What a derived token must know of each ancestor: its id (revocation) and its limits, which the
 * child spends too: the global ones, and the per-client ones (else a client could multiply its
 * own limit by deriving children).
 */
export const ancestorSchema = z.strictObject({
  jti: tokenIdSchema,
  perClientRequestLimits: requestLimitsSchema.optional(),
  globalRequestLimits: requestLimitsSchema.optional(),
});
export type Ancestor = z.infer<typeof ancestorSchema>;

export const tokenClaimsSchema = z.object({
  sub: z.string().endsWith('#aisbreaker'),
  iat: z.int().nonnegative(),
  exp: z.int().positive(),
  jti: tokenIdSchema,
  requestQuotas: requestQuotasSchema.default({}),
  serviceSecrets: serviceSecretsSchema.default([]),
  /** our extension, on derived tokens only: root first, parent last */
  ancestors: z.array(ancestorSchema).max(MAX_DERIVATION_DEPTH).optional(),
  /** our extensions, fixed at minting: a name for logs and audit lines, what it is for, what it may do (absent: DEFAULT_TOKEN_SCOPES) */
  name: nameSchema.optional(),
  description: descriptionSchema.optional(),
  scopes: scopesSchema.optional(),
});
export type TokenClaims = z.infer<typeof tokenClaimsSchema>;

/**
 * Legacy AIsBreaker tokens: the verifier gives each an id derived from the token itself; a `jti`,
 * `ancestors` or any other extension of ours (`scopes`: they get the default ones) in their payload is ignored (anyone holding a keyphrase-encrypted token could
 * have written them, e.g. to name one of our tokens and revoke it). That server put the mint
 * body's requestAuthAndQuotas into the token as it came, so fields it did not know are ignored
 * here as it ignored them.
 */
const legacyLimitsSchema = z.object(requestLimitsSchema.shape);
export const legacyClaimsSchema = tokenClaimsSchema.omit({ jti: true, ancestors: true, name: true, description: true, scopes: true }).extend({
  requestQuotas: z.object({ perClientRequestLimits: legacyLimitsSchema.optional(), globalRequestLimits: legacyLimitsSchema.optional() }).default({}),
  serviceSecrets: z.array(z.object(serviceSecretSchema.shape)).max(MAX_SERVICE_SECRETS).default([]),
});

/**
 * Whether a serviceSecrets entry's serviceId covers `serviceId`: the id itself or one below it at
 * a "/" boundary ("chat:openai.com" covers "chat:openai.com/gpt-4o", not "chat:openai.com-eu");
 * "" covers every service.
 */
export function coversServiceId(entryServiceId: string, serviceId: string): boolean {
  if (entryServiceId === '' || serviceId === entryServiceId) return true;
  return serviceId.startsWith(entryServiceId) && serviceId[entryServiceId.length] === '/';
}

/**
 * A derived token's jti starts with its family's root jti ("<root>.<own>"), so the family, and
 * with it the Redis hash tag of all its keys, is known from any jti alone.
 */
export function familyOf(jti: string): string {
  const dot = jti.indexOf('.');
  return dot < 0 ? jti : jti.slice(0, dot);
}

const SUBJECT_SUFFIX = '#aisbreaker';

export function subjectForHost(host: string): string {
  return host + SUBJECT_SUFFIX;
}

export function hostOfSubject(sub: string): string {
  return sub.slice(0, -SUBJECT_SUFFIX.length);
}

/** What a token may do: the scopes it was minted with, or the default ones. */
export function scopesOfToken(claims: Pick<TokenClaims, 'scopes'>): readonly Scope[] {
  return claims.scopes ?? DEFAULT_TOKEN_SCOPES;
}
