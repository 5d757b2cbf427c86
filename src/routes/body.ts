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

/**
 * Deepest nesting of arrays and objects a JSON body may have. Far beyond any real request (a
 * tool's JSON Schema nests a few dozen levels at most), and far below what makes re-serializing
 * it (JSON.stringify is recursive) overflow the stack.
 */
export const MAX_JSON_DEPTH = 128;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * 400 for a body nested deeper than MAX_JSON_DEPTH, before it is parsed. Counts brackets outside
 * strings; malformed JSON is left to the parser's own error.
 */
export function assertJsonDepth(bytes: Uint8Array): void {
  // cannot nest deeper than it has bytes: most bodies are done here
  if (bytes.length <= MAX_JSON_DEPTH) return;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i];
    if (inString) {
      if (byte === BACKSLASH) i++;
      else if (byte === QUOTE) inString = false;
    } else if (byte === QUOTE) inString = true;
    else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
      if (++depth > MAX_JSON_DEPTH) {
        throw new ApiError(400, 'INVALID_REQUEST', `(body): nested deeper than ${MAX_JSON_DEPTH} levels`, { field: '(body)', maxDepth: MAX_JSON_DEPTH });
      }
    } else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) depth--;
  }
}

const FORM_TYPE = 'application/x-www-form-urlencoded';

/** RFC 7009/7662 endpoints take a form body; JSON is accepted too. Flat fields only. */
export function formOrJsonBody(limitBytes: number): RequestHandler[] {
  const [requireType, parseJson] = jsonBody(limitBytes, ['application/json', FORM_TYPE]);
  return [requireType as RequestHandler, express.urlencoded({ limit: limitBytes, extended: false, type: FORM_TYPE }), parseJson as RequestHandler];
}
