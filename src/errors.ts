import { STATUS_CODES } from 'node:http';
import type { Response } from 'express';

/** Every error code of the product contract (design.md), one per failure kind. */
export type ErrorCode =
  | 'INVALID_REQUEST'
  | 'MISSING_API_KEY'
  | 'INVALID_API_KEY'
  | 'EXPIRED_API_KEY'
  | 'REVOKED_API_KEY'
  | 'WRONG_HOST'
  | 'FORBIDDEN'
  | 'UNKNOWN_SERVICE'
  | 'NOT_FOUND'
  | 'PAYLOAD_TOO_LARGE'
  | 'RATE_LIMITED'
  | 'UPSTREAM_ERROR'
  | 'UPSTREAM_UNAVAILABLE'
  | 'QUOTA_BACKEND_UNAVAILABLE'
  | 'UPSTREAM_TIMEOUT'
  | 'INTERNAL_ERROR';

/** OpenAI SDKs read `error.type`; these follow OpenAI's vocabulary. */
function errorTypeForStatus(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'api_error';
  return 'invalid_request_error';
}

export type ErrorDetails = Record<string, unknown>;

/**
 * An error meant for the caller. Its message must never contain a token, key or secret:
 * it is sent as is and logged as is.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly details?: ErrorDetails,
    /** extra response headers, e.g. Retry-After */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** OpenAI SDKs read `code`, `message`, `type`; AIsBreaker clients `message`, `statusCode`, `statusText`. */
export interface ErrorEnvelope {
  success: false;
  error: { code: ErrorCode; message: string; type: string; statusCode: number; statusText: string; details?: ErrorDetails };
}

export function errorEnvelope(err: ApiError): ErrorEnvelope {
  const error: ErrorEnvelope['error'] = {
    code: err.code,
    message: err.message,
    type: errorTypeForStatus(err.status),
    // also inside an event stream, whose HTTP status (200) was sent before the failure
    statusCode: err.status,
    statusText: STATUS_CODES[err.status] ?? 'Error',
  };
  if (err.details) error.details = err.details;
  return { success: false, error };
}

export function sendError(res: Response, err: ApiError): void {
  if (err.headers) res.set(err.headers);
  res.status(err.status).json(errorEnvelope(err));
}

export function invalidRequest(field: string, message: string, details: ErrorDetails = {}): ApiError {
  return new ApiError(400, 'INVALID_REQUEST', `${field}: ${message}`, { field, ...details });
}

/** The header a credential is expected in: named in every MISSING_API_KEY (details.header). */
export const CREDENTIAL_HEADER = 'Authorization';

/** 401 MISSING_API_KEY: no credential was presented. */
export function missingCredential(message = 'no credential: send "Authorization: Bearer aisbreaker_..." or "Api-Key: ..."'): ApiError {
  return new ApiError(401, 'MISSING_API_KEY', message, { header: CREDENTIAL_HEADER });
}

/** 401 INVALID_API_KEY; `keyId` is the credential's fingerprint (never the credential), when one was presented. */
export function invalidCredential(message: string, keyId?: string): ApiError {
  return new ApiError(401, 'INVALID_API_KEY', message, keyId === undefined ? undefined : { key_id: keyId });
}

/** 401 EXPIRED_API_KEY with details.expired_at (ISO 8601) when the expiry is known. */
export function expiredCredential(message: string, expiredAtMs: number | undefined): ApiError {
  return new ApiError(401, 'EXPIRED_API_KEY', message, expiredAtMs === undefined ? undefined : { expired_at: new Date(expiredAtMs).toISOString() });
}

/** 403 FORBIDDEN naming the scope the credential lacks (details.scope). */
export function missingScope(scope: string, action: string): ApiError {
  return new ApiError(403, 'FORBIDDEN', `${action} needs a credential with the "${scope}" scope`, { scope });
}
