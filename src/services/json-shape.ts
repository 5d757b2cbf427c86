/** Reading JSON of unknown shape, as the translations between APIs must. */

export type Json = Record<string, unknown>;

export function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A tool call's arguments (a JSON text in OpenAI's API) as the object Anthropic's tool_use carries; {} when unreadable. */
export function toolArguments(text: unknown): unknown {
  if (typeof text !== 'string' || text === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    return {};
  }
}
