import { assertJsonDepth } from '../json-depth.js';

/** Reading JSON of unknown shape, as the translations between APIs must. */

export type Json = Record<string, unknown>;

export function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A tool call's arguments (a JSON text in OpenAI's API) as the object Anthropic's tool_use carries;
 * {} when unreadable. The text is JSON inside the body, so the body's nesting limit (400) holds
 * for it as well: re-serializing what it nests would otherwise overflow the stack.
 */
export function toolArguments(text: unknown): unknown {
  if (typeof text !== 'string' || text === '') return {};
  assertJsonDepth(Buffer.from(text, 'utf8'), 'tool_calls.function.arguments');
  try {
    return JSON.parse(text);
  } catch {
    return {};
  }
}
