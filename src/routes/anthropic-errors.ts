import type { Response } from 'express';
import type { ApiError } from '../errors.js';
import { setAnthropicRateLimitHeaders } from '../quota/headers.js';
import { errorHandlerSending } from '../request-context.js';

/** Anthropic's error types, which its SDKs and Claude Code read, by status. */
function anthropicErrorType(status: number): string {
  switch (status) {
    case 400:
      return 'invalid_request_error';
    case 401:
      return 'authentication_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 413:
      return 'request_too_large';
    case 429:
      return 'rate_limit_error';
    case 504:
      return 'timeout_error';
    default:
      return status >= 500 ? 'api_error' : 'invalid_request_error';
  }
}

/** `{"type":"error","error":{"type","message"}}` as Anthropic answers, with our code and details inside `error`. */
export function anthropicErrorBody(err: ApiError): { type: 'error'; error: Record<string, unknown> } {
  return { type: 'error', error: { type: anthropicErrorType(err.status), message: err.message, code: err.code, ...(err.details ? { details: err.details } : {}) } };
}

/** The Anthropic routes' errors in Anthropic's shape, with its rate-limit headers beside ours. */
export const anthropicErrorHandler = errorHandlerSending((res: Response, err: ApiError) => {
  if (err.headers) res.set(err.headers);
  setAnthropicRateLimitHeaders(res, Date.now());
  res.status(err.status).json(anthropicErrorBody(err));
});
