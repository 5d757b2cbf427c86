import { z } from 'zod/v4';
import { parseTimeSpan } from '../config.js';
import { invalidRequest, type ApiError } from '../errors.js';
import { descriptionSchema, nameSchema, scopesSchema, type Scope } from '../scopes.js';
import { MAX_SERVICE_SECRETS, requestQuotasSchema, serviceSecretSchema, type RequestQuotas } from './claims.js';
import type { MintInput } from './codec.js';

/** The AIsBreaker mint body, shared by `POST /api/v1/oauth/token` and the CLI's `mint`. */
export const DEFAULT_EXPIRATION_TIME_SPAN = '2h';

export const mintRequestSchema = z.object({
  requestAuthAndQuotas: z.strictObject(
    {
      requestQuotas: requestQuotasSchema.optional(),
      // authSecret may be omitted only when deriving from a parent token (see parseMintRequest)
      serviceSecrets: z
        .array(serviceSecretSchema.extend({ authSecret: serviceSecretSchema.shape.authSecret.optional() }), { error: 'must be an array' })
        .max(MAX_SERVICE_SECRETS, { error: `at most ${MAX_SERVICE_SECRETS} entries` })
        .optional(),
    },
    // only a wrong type is "not an object"; an unknown key keeps zod's message, which names the key
    { error: (issue) => (issue.code === 'invalid_type' ? 'must be an object' : undefined) },
  ),
  expirationTimeSpan: z
    .string({ error: 'must be a string like "2h", "365d" or "90 days"' })
    .max(32, { error: 'must be at most 32 chars' })
    .optional(),
  // our extensions: fixed at minting, shown in tokeninfo, logs and audit lines (never a secret)
  name: nameSchema.optional(),
  description: descriptionSchema.optional(),
  scopes: scopesSchema.optional(),
  // OAuth client-credentials style fields
  grant_type: z.string().max(64).optional(),
  clientId: z.string().max(256).optional(),
  clientSecret: z.string().max(1024).optional(),
});
export type MintRequest = z.infer<typeof mintRequestSchema>;

export interface ValidMint {
  /** undefined when the body names none (a derived token then keeps its parent's) */
  requestQuotas: RequestQuotas | undefined;
  serviceSecrets: { serviceId: string; authSecret?: string | undefined }[] | undefined;
  lifetimeSeconds: number;
  /** false when the default lifetime applies */
  lifetimeExplicit: boolean;
  name?: string | undefined;
  description?: string | undefined;
  /** undefined when the body names none (the default scopes, or a derived token's parent's) */
  scopes?: Scope[] | undefined;
}

/** First zod issue -> a 400 that names the field; never quotes the offending value. */
export function zodIssueToApiError(error: z.ZodError, prefix = ''): ApiError {
  const issue = error.issues[0];
  const path = issue?.path.map(String).join('.') ?? '';
  const field = prefix + (path || '(body)');
  return invalidRequest(field, issue?.message ?? 'invalid', { issues: error.issues.length });
}

/** A mint body for a derived token: authSecret may be left out (the parent's is used). */
export function parseDeriveRequest(body: unknown, maxLifetimeMs: number): ValidMint {
  const parsed = mintRequestSchema.safeParse(body);
  if (!parsed.success) throw zodIssueToApiError(parsed.error);
  const request = parsed.data;
  return {
    requestQuotas: request.requestAuthAndQuotas.requestQuotas,
    serviceSecrets: request.requestAuthAndQuotas.serviceSecrets,
    lifetimeSeconds: lifetimeSeconds(request.expirationTimeSpan, maxLifetimeMs),
    lifetimeExplicit: request.expirationTimeSpan !== undefined,
    name: request.name,
    description: request.description,
    scopes: request.scopes,
  };
}

/** A mint body for a new token: every secret must be given. */
export function parseMintRequest(body: unknown, maxLifetimeMs: number): Omit<MintInput, 'host' | 'parent'> {
  const request = parseDeriveRequest(body, maxLifetimeMs);
  const serviceSecrets = (request.serviceSecrets ?? []).map((entry, i) => {
    if (entry.authSecret === undefined) throw invalidRequest(`requestAuthAndQuotas.serviceSecrets.${i}.authSecret`, 'required');
    return { serviceId: entry.serviceId, authSecret: entry.authSecret };
  });
  return { requestQuotas: request.requestQuotas ?? {}, serviceSecrets, lifetimeSeconds: request.lifetimeSeconds, name: request.name, description: request.description, scopes: request.scopes };
}

function lifetimeSeconds(span: string | undefined, maxLifetimeMs: number): number {
  const lifetimeMs = parseTimeSpan(span ?? DEFAULT_EXPIRATION_TIME_SPAN);
  if (lifetimeMs === undefined) {
    throw invalidRequest('expirationTimeSpan', 'not a time span; use e.g. "2h", "365d" or "90 days"');
  }
  if (lifetimeMs > maxLifetimeMs) {
    throw invalidRequest('expirationTimeSpan', `longer than this server allows (max ${Math.floor(maxLifetimeMs / 1000)} s)`, {
      maxSeconds: Math.floor(maxLifetimeMs / 1000),
    });
  }
  return Math.ceil(lifetimeMs / 1000);
}
