import { z } from 'zod/v4';
import { parseTimeSpan } from '../config.js';
import { invalidRequest, type ApiError } from '../errors.js';
import { requestQuotasSchema, serviceSecretsSchema, type RequestQuotas, type ServiceSecret } from './claims.js';

/** The AIsBreaker mint body, shared by `POST /api/v1/oauth/token` and the CLI's `mint`. */
export const DEFAULT_EXPIRATION_TIME_SPAN = '2h';

export const mintRequestSchema = z.object({
  requestAuthAndQuotas: z.strictObject(
    {
      requestQuotas: requestQuotasSchema.optional(),
      serviceSecrets: serviceSecretsSchema.optional(),
    },
    { error: 'must be an object' },
  ),
  expirationTimeSpan: z
    .string({ error: 'must be a string like "2h", "365d" or "90 days"' })
    .max(32, { error: 'must be at most 32 chars' })
    .optional(),
  // OAuth client-credentials style fields
  grant_type: z.string().max(64).optional(),
  clientId: z.string().max(256).optional(),
  clientSecret: z.string().max(1024).optional(),
});
export type MintRequest = z.infer<typeof mintRequestSchema>;

export interface ValidMint {
  requestQuotas: RequestQuotas;
  serviceSecrets: ServiceSecret[];
  lifetimeSeconds: number;
  clientSecret: string | undefined;
}

/** First zod issue -> a 400 that names the field; never quotes the offending value. */
export function zodIssueToApiError(error: z.ZodError, prefix = ''): ApiError {
  const issue = error.issues[0];
  const path = issue?.path.map(String).join('.') ?? '';
  const field = prefix + (path || '(body)');
  return invalidRequest(field, issue?.message ?? 'invalid', { issues: error.issues.length });
}

export function parseMintRequest(body: unknown, maxLifetimeMs: number): ValidMint {
  const parsed = mintRequestSchema.safeParse(body);
  if (!parsed.success) throw zodIssueToApiError(parsed.error);
  const request = parsed.data;

  const span = request.expirationTimeSpan ?? DEFAULT_EXPIRATION_TIME_SPAN;
  const lifetimeMs = parseTimeSpan(span);
  if (lifetimeMs === undefined) {
    throw invalidRequest('expirationTimeSpan', 'not a time span; use e.g. "2h", "365d" or "90 days"');
  }
  if (lifetimeMs > maxLifetimeMs) {
    throw invalidRequest('expirationTimeSpan', `longer than this server allows (max ${Math.floor(maxLifetimeMs / 1000)} s)`, {
      maxSeconds: Math.floor(maxLifetimeMs / 1000),
    });
  }
  const lifetimeSeconds = Math.ceil(lifetimeMs / 1000);

  return {
    requestQuotas: request.requestAuthAndQuotas.requestQuotas ?? {},
    serviceSecrets: request.requestAuthAndQuotas.serviceSecrets ?? [],
    lifetimeSeconds,
    clientSecret: request.clientSecret,
  };
}
