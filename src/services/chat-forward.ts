import { readServerSentEvents } from './sse-reader.js';
import { answerModelOf, usageOf } from './openai-format.js';
import { MAX_ANSWER_BYTES, upstreamMessage, type Upstream } from './upstream.js';
import type { ChatCompletionsRequest, ChatCompletionsResult, LlmUsage, ServiceCall } from './types.js';

export interface ForwardOptions {
  /** the chat completions path under the upstream's base URL */
  path: string;
  /**
   * Ask a streaming upstream for its usage chunk even when the caller did not, so LLM-token
   * quotas and metrics see every stream; that extra chunk is then not passed to the caller.
   */
  requestStreamUsage: boolean;
}

/**
 * Forwards an OpenAI chat completions request to an OpenAI-compatible upstream (OpenAI, vLLM,
 * Ollama, another aisbreaker gateway, ...) and hands its answer back as it comes: the JSON body
 * untouched, or the stream event by event, never buffered whole.
 */
export async function forwardChatCompletions(upstream: Upstream, request: ChatCompletionsRequest, call: ServiceCall, options: ForwardOptions): Promise<ChatCompletionsResult> {
  const streaming = request.body.stream === true;
  const addUsage = streaming && options.requestStreamUsage && request.body.stream_options?.include_usage !== true;
  const body = addUsage ? JSON.stringify({ ...request.body, stream_options: { ...request.body.stream_options, include_usage: true } }) : (request.raw ?? JSON.stringify(request.body));
  // A call the caller leaves (or the upstream breaks off) before its usage arrives has still been
  // billed upstream, for the prompt and for what was generated: it is charged an estimate, or
  // leaving early would be a way around LLM-token limits.
  const estimated = (chunksSent: number): LlmUsage => ({ total_tokens: estimatedTokens(body, chunksSent) });
  let response: Awaited<ReturnType<Upstream['post']>>;
  try {
    response = await upstream.post(options.path, body, call.secret, call.signal, call.byOperatorKey, call.traceHeaders);
  } catch (err) {
    if (call.signal.aborted) call.onUsage?.(estimated(0));
    throw err;
  }

  if (!streaming) {
    let answer: Buffer;
    try {
      answer = await upstream.readAll(response.body, call.signal);
    } catch (err) {
      call.onUsage?.(estimated(0));
      throw err;
    }
    // an answer without usage (or not JSON at all) still cost tokens upstream: its estimate
    if (!reportUsage(call, parseJson(answer.toString('utf8')))) call.onUsage?.({ total_tokens: estimatedTokens(body, 0) + Math.ceil(answer.length / 4) });
    return { kind: 'json', body: answer };
  }

  async function* chunks(): AsyncGenerator<string> {
    // some upstreams repeat a running usage on every chunk: the last one is the total
    let usage: unknown;
    let sent = 0;
    let finished = false;
    try {
      for await (const event of readServerSentEvents(response.body, MAX_ANSWER_BYTES)) {
        if (event.data === '[DONE]') {
          // a whole stream without usage is charged its estimate too
          if (!reportUsage(call, usage)) call.onUsage?.(estimated(sent));
          finished = true;
          return;
        }
        // only usage and error chunks are parsed: the others pass through as the upstream wrote them
        if (event.data.includes('"error"')) {
          sent++;
          yield withoutSecret(event.data, call.secret);
          continue;
        }
        if (event.data.includes('"total_tokens"')) {
          const chunk = parseJson(event.data);
          usage = chunk;
          if (addUsage && isUsageOnlyChunk(chunk)) continue;
        }
        sent++;
        yield event.data;
      }
    } catch (err) {
      throw upstream.failure(err, call.signal);
    } finally {
      // ended early (the caller left, the upstream broke off): the last usage seen, else an estimate
      if (!finished && !reportUsage(call, usage)) call.onUsage?.(estimated(sent));
    }
    // a stream that just stops is cut short, and the caller must not take it for a whole answer
    throw upstream.truncated();
  }
  return { kind: 'stream', chunks: chunks() };
}

/**
 * Tokens a call cost upstream, when the upstream could not say: ~4 bytes of the request per
 * prompt token (the JSON around the messages makes this an overestimate, the safe side for a
 * limit), and a token per streamed chunk (what OpenAI-compatible upstreams send per chunk).
 */
export function estimatedTokens(requestBody: string | Buffer, chunksSent: number): number {
  return Math.ceil(Buffer.byteLength(requestBody) / 4) + chunksSent;
}

/** Reports the usage an answer (or usage chunk) carries, and the model it names; whether it carried a usage. */
function reportUsage(call: ServiceCall, answer: unknown): boolean {
  const usage = usageOf(answer);
  if (usage) call.onUsage?.(usage);
  const model = call.onResponseModel && answerModelOf(answer);
  if (model) call.onResponseModel?.(model);
  return usage !== undefined;
}

/** An error chunk as the caller may see it: its message and code never quote the secret sent. */
function withoutSecret(data: string, secret: string | undefined): string {
  const chunk = parseJson(data) as { error?: { message?: unknown; code?: unknown } } | undefined;
  const error = chunk?.error;
  // a chunk that merely says "error" somewhere (in its content, say) is no error chunk
  if (typeof error !== 'object' || error === null) return data;
  const message = typeof error.message === 'string' ? upstreamMessage(error.message, secret) : error.message;
  const code = typeof error.code === 'string' && upstreamMessage(error.code, secret) !== error.code ? undefined : error.code;
  return JSON.stringify({ ...chunk, error: { ...error, message, code } });
}

function isUsageOnlyChunk(chunk: unknown): boolean {
  const choices = (chunk as { choices?: unknown } | undefined)?.choices;
  return Array.isArray(choices) && choices.length === 0;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
