import { usageOf } from './openai-format.js';
import type { LlmUsage, StreamEvent } from './types.js';

/**
 * How each API reports its LLM-token usage, in a whole answer and in a stream, and which stream
 * event is its last: the base of LLM-token quotas and metrics for every forwarded call.
 */
export interface UsageMeter {
  /** the usage a whole JSON answer carries */
  ofAnswer(answer: unknown): LlmUsage | undefined;
  /** a reader for one stream */
  stream(): StreamMeter;
}

export interface StreamMeter {
  /** reads one event: whether it is passed on to the caller, and whether it ends the stream */
  see(event: StreamEvent): { pass: boolean; last: boolean };
  /** the usage seen so far */
  usage(): LlmUsage | undefined;
}

const PASS = { pass: true, last: false };
const DONE = { pass: false, last: true };

/**
 * OpenAI chat and text completions: `usage` on the answer, or on a chunk of the stream (some
 * upstreams repeat a running usage on every chunk: the last one is the total), ended by `[DONE]`.
 * `hideUsageChunk`: the usage-only chunk was asked for by the gateway, not the caller.
 */
export function completionsMeter(hideUsageChunk: boolean): UsageMeter {
  return {
    ofAnswer: usageOf,
    stream: lastReportedUsage((event) => {
      // only usage chunks are parsed: the others pass through as the upstream wrote them
      if (!event.data.includes('"total_tokens"')) return PASS;
      const chunk = parseJson(event.data);
      const choices = (chunk as { choices?: unknown } | undefined)?.choices;
      return { pass: !(hideUsageChunk && Array.isArray(choices) && choices.length === 0), last: false, usage: usageOf(chunk) };
    }),
  };
}

/**
 * A stream whose usage is the last one an event reported (`see`), ended by `[DONE]` (not passed
 * on) or by an event `see` calls the last.
 */
function lastReportedUsage(see: (event: StreamEvent) => { pass: boolean; last: boolean; usage?: LlmUsage }): () => StreamMeter {
  return () => {
    let usage: LlmUsage | undefined;
    return {
      see(event) {
        if (event.data === '[DONE]') return DONE;
        const seen = see(event);
        usage = seen.usage ?? usage;
        return seen;
      },
      usage: () => usage,
    };
  };
}

/** Embeddings: `usage` on the answer, never streamed. */
export const embeddingsMeter: UsageMeter = completionsMeter(false);

const ANTHROPIC_USAGE_FIELDS = ['input_tokens', 'output_tokens', 'cache_creation_input_tokens', 'cache_read_input_tokens'] as const;
type AnthropicUsage = Partial<Record<(typeof ANTHROPIC_USAGE_FIELDS)[number], number>>;

/** Anthropic's usage fields, the later ones replacing the earlier (message_delta counts from the start). */
function mergeAnthropicUsage(into: AnthropicUsage, usage: unknown): void {
  if (typeof usage !== 'object' || usage === null) return;
  for (const field of ANTHROPIC_USAGE_FIELDS) {
    const value = (usage as Record<string, unknown>)[field];
    if (typeof value === 'number' && Number.isFinite(value) && value >= 0) into[field] = value;
  }
}

function anthropicTotal(usage: AnthropicUsage): LlmUsage | undefined {
  const values = ANTHROPIC_USAGE_FIELDS.map((field) => usage[field]).filter((value) => value !== undefined);
  return values.length === 0 ? undefined : { total_tokens: values.reduce((sum, value) => sum + value, 0) };
}

/**
 * Anthropic Messages: `usage` on the message, or on `message_start` (input, cache) and
 * `message_delta` (output so far) of a stream, ended by `message_stop` (or an `error` event).
 * Every usage field counts, cache reads and writes included: each is billed.
 */
export const messagesMeter: UsageMeter = {
  ofAnswer(answer) {
    const usage: AnthropicUsage = {};
    mergeAnthropicUsage(usage, (answer as { usage?: unknown } | null)?.usage);
    return anthropicTotal(usage);
  },
  stream() {
    const usage: AnthropicUsage = {};
    return {
      see(event) {
        if (event.event === 'message_start') mergeAnthropicUsage(usage, (parseJson(event.data) as { message?: { usage?: unknown } } | undefined)?.message?.usage);
        else if (event.event === 'message_delta') mergeAnthropicUsage(usage, (parseJson(event.data) as { usage?: unknown } | undefined)?.usage);
        return { pass: true, last: event.event === 'message_stop' || event.event === 'error' };
      },
      usage: () => anthropicTotal(usage),
    };
  },
};

const RESPONSE_ENDS = new Set(['response.completed', 'response.failed', 'response.incomplete', 'error']);

/** OpenAI Responses: `usage` on the response, in a stream on the response its final event carries. */
export const responsesMeter: UsageMeter = {
  ofAnswer: usageOf,
  stream: lastReportedUsage((event) => {
    const last = event.event !== undefined && RESPONSE_ENDS.has(event.event);
    return { pass: true, last, usage: last ? usageOf((parseJson(event.data) as { response?: unknown } | undefined)?.response) : undefined };
  }),
};

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
