import type { IncomingMessage } from 'node:http';
import express, { type RequestHandler } from 'express';
import { ApiError, invalidRequest } from '../errors.js';
import { assertJsonDepth } from '../json-depth.js';

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

export const KB = 1024;
export const MB = 1024 * KB;

/**
 * JSON body parsing with a size limit. Malformed JSON and oversized bodies become the envelope's
 * 400/413 in the error handler; a body of another content type is refused here, by name, and a
 * body declared larger than the limit before a byte of it is read.
 */
export function jsonBody(limitBytes: number, acceptedTypes: string[] = ['application/json'], options: { keepRaw?: boolean } = {}): RequestHandler[] {
  const requireType: RequestHandler = (req, res, next) => {
    // the common case without parsing the header (type-is costs more than the rest of the check)
    const plainJson = req.headers['content-type'] === 'application/json' && acceptedTypes.includes('application/json');
    if (!plainJson && !req.is(acceptedTypes)) {
      throw new ApiError(400, 'INVALID_REQUEST', `Content-Type must be ${acceptedTypes.join(' or ')}`, { field: 'Content-Type' });
    }
    // body-parser would first read the whole declared body: a client declaring 50 MB and sending nothing would hold the connection
    if (Number(req.headers['content-length']) > limitBytes) {
      res.setHeader('Connection', 'close');
      throw new ApiError(413, 'PAYLOAD_TOO_LARGE', `request body is too large (at most ${limitBytes} bytes)`, { field: '(body)' });
    }
    next();
  };
  const verify = (req: IncomingMessage, _res: unknown, buffer: Buffer, encoding: string): void => {
    // the brackets are counted in UTF-8; a body in another UTF (rare, but JSON allows it) is converted first
    assertJsonDepth(encoding === 'utf-8' ? buffer : new TextEncoder().encode(new TextDecoder(encoding).decode(buffer)));
    if (options.keepRaw && encoding === 'utf-8') (req as express.Request).rawBody = buffer;
  };
  return [requireType, express.json({ limit: limitBytes, type: acceptedTypes, strict: true, verify })];
}

const UNICODE_ESCAPE = Buffer.from('\\u');

/**
 * Whether the bytes as received mean to any JSON parser what the gateway checked: each key it
 * decides on (`checkedKeys`, as JSON-quoted bytes) appears at most once, and no \u escape can
 * spell one in disguise. (Parsers differ on duplicate keys: the gateway takes the last "model",
 * an upstream might take the first.)
 */
export function saysWhatWasChecked(raw: Buffer, checkedKeys: Buffer[]): boolean {
  if (raw.includes(UNICODE_ESCAPE)) return false;
  return checkedKeys.every((key) => raw.indexOf(key) === raw.lastIndexOf(key));
}

/** Keys as `saysWhatWasChecked` looks for them. */
export function quotedKeys(...keys: string[]): Buffer[] {
  return keys.map((key) => Buffer.from(JSON.stringify(key)));
}

const FORM_TYPE = 'application/x-www-form-urlencoded';

/** RFC 7009/7662 endpoints take a form body; JSON is accepted too. Flat fields only. */
export function formOrJsonBody(limitBytes: number): RequestHandler[] {
  const [requireType, parseJson] = jsonBody(limitBytes, ['application/json', FORM_TYPE]);
  return [requireType as RequestHandler, express.urlencoded({ limit: limitBytes, extended: false, type: FORM_TYPE }), parseJson as RequestHandler];
}

/** A key as a case-insensitive JSON decoder (Go's encoding/json: Unicode simple folding) compares it. */
function folded(key: string): string {
  return key.toUpperCase().toLowerCase();
}

/**
 * 400 for a key of `body` that is not one of `decided` but reads as one to a case-insensitive
 * decoder ("Model", "ſtream"): the gateway decides on the exact key, and an upstream that takes
 * the other (Go's encoding/json, the last match wins) would do what was not checked.
 */
export function assertNoLookalikeKeys(body: object, decided: readonly string[], prefix = ''): void {
  for (const key of Object.keys(body)) {
    if (decided.includes(key)) continue;
    const name = decided.find((d) => folded(d) === folded(key));
    if (name !== undefined) throw invalidRequest(prefix + key, `not a field of this API; write "${name}" exactly`);
  }
}
