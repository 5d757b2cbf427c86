import { randomUUID } from 'node:crypto';
import type { ErrorRequestHandler, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { nameOf } from './auth/principal.js';
import { ApiError, sendError } from './errors.js';

declare global {
  // Express's own extension point for request properties
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      log?: Logger;
    }
  }
}

const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const CREDENTIAL_PREFIX = /^(aisbreaker_|aisbk_|sk-)/i;
const CREDENTIAL_ANYWHERE = /aisbreaker_|aisbk_|sk-/i;
const MAX_SEGMENT = 40;

/**
 * The path as it may be logged or echoed in an error: clients do put keys into URLs, so a segment
 * that looks like a credential (a known key prefix, or longer than any route's own) is replaced.
 */
export function safePath(path: string): string {
  // the routes' own paths: nothing in them can be a credential (no segment is long enough, no prefix, no escape)
  if (path.length <= MAX_SEGMENT && !path.includes('%') && !CREDENTIAL_ANYWHERE.test(path)) return path;
  return path
    .slice(0, 1024)
    .split('/')
    .map((segment) => {
      let decoded = segment;
      try {
        decoded = decodeURIComponent(segment);
      } catch {
        // not percent-encoded text: judge it as it is
      }
      return decoded.length > MAX_SEGMENT || CREDENTIAL_PREFIX.test(decoded) ? '[redacted]' : segment;
    })
    .join('/');
}

/**
 * Gives each request an id (the caller's X-Request-Id when it is a plain token that does not look
 * like a key, a new UUID otherwise), returns it, and writes one log line when the response is
 * done. The line names the path without its query string (and without credential-like segments,
 * see safePath), the credential only by fingerprint, an operator key's project and the service
 * called.
 */
export function requestContext(logger: Logger): RequestHandler {
  // the access line holds only the fields below, none of which can carry a secret: it skips the
  // redaction pass, which costs more than writing the line itself
  const accessLog = logger.child({}, { redact: { paths: [] } });
  return (req, res, next) => {
    const incoming = req.get('x-request-id');
    // echoed and logged: so never a value that looks like a key a client sent in the wrong header
    const requestId = incoming !== undefined && SAFE_REQUEST_ID.test(incoming) && !CREDENTIAL_ANYWHERE.test(incoming) ? incoming : randomUUID();
    req.requestId = requestId;
    req.log = logger.child({ reqId: requestId });
    res.setHeader('X-Request-Id', requestId);
    const started = process.hrtime.bigint();
    res.once('close', () => {
      accessLog.info(
        {
          reqId: requestId,
          method: req.method,
          path: safePath(req.path),
          status: res.statusCode,
          ms: Number(process.hrtime.bigint() - started) / 1e6,
          credential: req.credentialFingerprint,
          // an operator key is named by its project, never by itself; any credential by its name, if it has one
          project: req.principal?.kind === 'key' ? req.principal.key.project : undefined,
          name: nameOf(req.principal),
          service: typeof res.locals.service === 'string' ? res.locals.service : undefined,
          completed: res.writableFinished,
        },
        'request',
      );
    });
    next();
  };
}

export const notFound: RequestHandler = (req) => {
  throw new ApiError(404, 'NOT_FOUND', `no route for ${req.method} ${safePath(req.path)}`);
};

interface BodyParserError {
  type?: string;
  status?: number;
  /** http-errors: true for client errors, whose cause is the request itself */
  expose?: boolean;
}

/** Every error becomes the one envelope; unexpected ones are logged and hidden behind a 500. */
export const errorHandler: ErrorRequestHandler = errorHandlerSending(sendError);

/** An error handler answering in an API's own error shape (`send`), as `errorHandler` does in ours. */
export function errorHandlerSending(send: (res: Response, err: ApiError) => void): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    const apiError = toApiError(err, req.requestId);
    if (apiError.status >= 500 && apiError.code === 'INTERNAL_ERROR') {
      req.log?.error({ err }, 'unhandled error');
    }
    if (res.headersSent) {
      res.end();
      return;
    }
    send(res, apiError);
  };
}

function toApiError(err: unknown, requestId: string | undefined): ApiError {
  if (err instanceof ApiError) return err;
  // the router could not decode a path parameter ("%ff"): the caller's mistake, not ours
  if (err instanceof URIError && (err as { status?: unknown }).status === 400) {
    return new ApiError(400, 'INVALID_REQUEST', '(path): malformed percent-encoding', { field: '(path)' });
  }
  const bodyError = err as BodyParserError;
  switch (bodyError?.type) {
    case 'entity.too.large':
      return new ApiError(413, 'PAYLOAD_TOO_LARGE', 'request body is too large', { field: '(body)' });
    case 'entity.parse.failed':
      return new ApiError(400, 'INVALID_REQUEST', '(body): malformed JSON', { field: '(body)' });
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new ApiError(400, 'INVALID_REQUEST', 'Content-Type: unsupported charset or encoding', { field: 'Content-Type' });
    case 'request.aborted':
    case 'request.size.invalid':
      return new ApiError(400, 'INVALID_REQUEST', '(body): incomplete request body', { field: '(body)' });
  }
  // any other client error of the body parser, e.g. a body that does not inflate as its Content-Encoding says
  if (bodyError?.expose === true && typeof bodyError.status === 'number' && bodyError.status >= 400 && bodyError.status < 500) {
    return new ApiError(400, 'INVALID_REQUEST', '(body): unreadable request body (check Content-Encoding)', { field: '(body)' });
  }
  return new ApiError(500, 'INTERNAL_ERROR', `internal error (request id ${requestId ?? 'unknown'})`);
}
