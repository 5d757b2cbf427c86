import { ApiError } from './errors.js';

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
export function assertJsonDepth(bytes: Uint8Array, field = '(body)'): void {
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
        throw new ApiError(400, 'INVALID_REQUEST', `${field}: nested deeper than ${MAX_JSON_DEPTH} levels`, { field, maxDepth: MAX_JSON_DEPTH });
      }
    } else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) depth--;
  }
}
