import express, { type RequestHandler } from 'express';
import { ApiError } from '../errors.js';

/**
 * JSON body parsing with a size limit. Malformed JSON and oversized bodies become the envelope's
 * 400/413 in the error handler; a body of another content type is refused here, by name.
 */
export function jsonBody(limit: string, acceptedTypes: string[] = ['application/json']): RequestHandler[] {
  const requireType: RequestHandler = (req, _res, next) => {
    if (!req.is(acceptedTypes)) {
      throw new ApiError(400, 'INVALID_REQUEST', `Content-Type must be ${acceptedTypes.join(' or ')}`, { field: 'Content-Type' });
    }
    next();
  };
  return [requireType, express.json({ limit, type: acceptedTypes, strict: true })];
}

const FORM_TYPE = 'application/x-www-form-urlencoded';

/** RFC 7009/7662 endpoints take a form body; JSON is accepted too. Flat fields only. */
export function formOrJsonBody(limit: string): RequestHandler[] {
  const [requireType, parseJson] = jsonBody(limit, ['application/json', FORM_TYPE]);
  return [requireType as RequestHandler, express.urlencoded({ limit, extended: false, type: FORM_TYPE }), parseJson as RequestHandler];
}
