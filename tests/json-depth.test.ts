import { describe, expect, it } from 'vitest';
import { ApiError } from '../src/errors.js';
import { MAX_JSON_DEPTH, assertJsonDepth } from '../src/json-depth.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const nested = (depth: number, open = '[', close = ']'): string => open.repeat(depth) + close.repeat(depth);

describe('assertJsonDepth', () => {
  it('accepts nesting up to the limit, arrays and objects alike', () => {
    expect(() => assertJsonDepth(bytes(nested(MAX_JSON_DEPTH)))).not.toThrow();
    expect(() => assertJsonDepth(bytes('{"a":'.repeat(MAX_JSON_DEPTH) + '1' + '}'.repeat(MAX_JSON_DEPTH)))).not.toThrow();
    // siblings do not add up
    expect(() => assertJsonDepth(bytes(`[${Array.from({ length: 200 }, () => nested(10)).join(',')}]`))).not.toThrow();
  });

  it('refuses one level more with a 400 naming the limit', () => {
    let error: unknown;
    try {
      assertJsonDepth(bytes(`{"x":${nested(MAX_JSON_DEPTH)}}`));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 400, code: 'INVALID_REQUEST', details: { field: '(body)', maxDepth: MAX_JSON_DEPTH } });
    expect((error as Error).message).toBe(`(body): nested deeper than ${MAX_JSON_DEPTH} levels`);
  });

  it('does not count brackets inside strings, escaped quotes included', () => {
    expect(() => assertJsonDepth(bytes(JSON.stringify({ text: '['.repeat(1000) })))).not.toThrow();
    expect(() => assertJsonDepth(bytes(JSON.stringify({ text: '\\"' + '{'.repeat(1000) })))).not.toThrow();
    expect(() => assertJsonDepth(bytes(`["\\"", ${nested(MAX_JSON_DEPTH)}]`))).toThrow(ApiError);
  });
});
