import type { IncomingMessage } from 'node:http';
import express, { type RequestHandler } from 'express';
import { ApiError } from '../errors.js';

declare global {
  // Express's own extension point for request properties
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** the JSON body's bytes as received (UTF-8 only), kept where a route may forward them as they are */
      rawBody?: Buffer;
    }
  }
}

/**
 * JSON body parsing with a size limit. Malformed JSON and oversized bodies become the envelope's
 * 400/413 in the error handler; a body of another content type is refused here, by name.
 */
export function jsonBody(limit: string, acceptedTypes: string[] = ['application/json'], options: { keepRaw?: boolean } = {}): RequestHandler[] {
  const requireType: RequestHandler = (req, _res, next) => {
    if (!req.is(acceptedTypes)) {
      throw new ApiError(400, 'INVALID_REQUEST', `Content-Type must be ${acceptedTypes.join(' or ')}`, { field: 'Content-Type' });
    }
    next();
  };
  const keepRaw = options.keepRaw ? (req: IncomingMessage, _res: unknown, buffer: Buffer, encoding: string): void => {
    if (encoding === 'utf-8') (req as express.Request).rawBody = buffer;
  } : undefined;
  return [requireType, express.json({ limit, type: acceptedTypes, strict: true, verify: keepRaw })];
}

const FORM_TYPE = 'application/x-www-form-urlencoded';

/** RFC 7009/7662 endpoints take a form body; JSON is accepted too. Flat fields only. */
export function formOrJsonBody(limit: string): RequestHandler[] {
  const [requireType, parseJson] = jsonBody(limit, ['application/json', FORM_TYPE]);
  return [requireType as RequestHandler, express.urlencoded({ limit, extended: false, type: FORM_TYPE }), parseJson as RequestHandler];
}
