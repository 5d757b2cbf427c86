import { answerModelOf } from './openai-format.js';
import { readServerSentEvents } from './sse-reader.js';
import { completionsMeter, embeddingsMeter, messagesMeter, parseJson, responsesMeter, type UsageMeter } from './usage-meters.js';
import { isObject, type Json } from './json-shape.js';
import { MAX_ANSWER_BYTES, upstreamMessage, type Upstream, type UpstreamRequest } from './upstream.js';
import type { ApiRequest, ApiResult, ChatCompletionsRequest, ForwardedApi, ChatCompletionsResult, LlmUsage, ServiceCall, StreamEvent } from './types.js';

/** The request as sent upstream (its path under the base URL, the API's own headers such as anthropic-version), and how to read its answer. */
export interface ForwardRequest extends UpstreamRequest {
  /** the caller asked for an event stream */
  streaming: boolean;
  /** how the answer reports LLM-token usage; none for calls that use no tokens (counting, lookups) */
  meter?: UsageMeter;
}

/**
 * Forwards a request to an upstream and hands its answer back as it comes: the JSON body
 * untouched, or the stream event by event, never buffered whole; the usage the answer reports
 * goes to `call.onUsage`.
 */
export async function forward(upstream: Upstream, request: ForwardRequest, call: ServiceCall): Promise<ApiResult> {
  const { meter } = request;
  // A call the caller leaves (or the upstream breaks off) before its usage arrives has still been
  // billed upstream, for the prompt and for what was generated: it is charged an estimate, or
  // leaving early would be a way around LLM-token limits.
  const chargeEstimate = (eventsSent: number): void => {
    if (meter) call.onUsage?.({ total_tokens: estimatedTokens(request.body ?? '', eventsSent) });
  };
  let response: Awaited<ReturnType<Upstream['send']>>;
  try {
    response = await upstream.send(request, call.secret, call.signal, call.byOperatorKey, call.traceHeaders);
  } catch (err) {
    if (call.signal.aborted) chargeEstimate(0);
    throw err;
  }

  if (!request.streaming) {
    let answer: Buffer;
    try {
      answer = await upstream.readAll(response.body, call.signal);
    } catch (err) {
      chargeEstimate(0);
      throw err;
    }
    const parsed = parseJson(answer.toString('utf8'));
    reportModel(call, parsed);
    const usage = meter?.ofAnswer(parsed);
    if (usage) call.onUsage?.(usage);
    // an answer without usage (or not JSON at all) still cost tokens upstream: its estimate
    else if (meter) call.onUsage?.({ total_tokens: estimatedTokens(request.body ?? '', 0) + Math.ceil(answer.length / 4) });
    return { kind: 'json', body: answer };
  }

  async function* events(): AsyncGenerator<StreamEvent> {
    const reader = meter?.stream();
    let sent = 0;
    // the model that answered (for tracing): named by a stream's first event
    let modelSought = call.onResponseModel !== undefined;
    try {
      for await (const event of readServerSentEvents(response.body, MAX_ANSWER_BYTES)) {
        if (modelSought) modelSought = !reportModel(call, parseJson(event.data));
        const seen = reader?.see(event) ?? { pass: true, last: false };
        if (seen.pass) {
          sent++;
          // only error events are parsed here: the others pass through as the upstream wrote them
          const data = event.data.includes('"error"') ? withoutSecret(event.data, call.secret) : event.data;
          yield event.event === undefined || event.event === 'message' ? { data } : { event: event.event, data };
        }
        if (seen.last) return;
      }
    } catch (err) {
      throw upstream.failure(err, call.signal);
    } finally {
      // the last usage seen; else an estimate, for a stream ended early (the caller left, the
      // upstream broke off) or a whole stream without usage alike
      const usage = reader?.usage();
      if (usage) call.onUsage?.(usage);
      else chargeEstimate(sent);
    }
    // a stream that just stops is cut short, and the caller must not take it for a whole answer
    if (reader) throw upstream.truncated();
  }
  return { kind: 'stream', events: events() };
}

export interface ChatForwardOptions {
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
 * Ollama, another aisbreaker gateway, ...): the JSON answer, or the chunks of its stream.
 */
export function forwardChatCompletions(upstream: Upstream, request: ChatCompletionsRequest, call: ServiceCall, options: ChatForwardOptions): Promise<ChatCompletionsResult> {
  return forwardCompletions(upstream, options.path, request, call, options.requestStreamUsage);
}

/** Chat and text completions: a stream asks for its usage chunk (see ChatForwardOptions.requestStreamUsage). */
function forwardCompletions(upstream: Upstream, path: string, request: ApiRequest, call: ServiceCall, requestStreamUsage: boolean): Promise<ApiResult> {
  const fields = request.body ?? {};
  const streaming = fields.stream === true;
  const streamOptions = fields.stream_options as { include_usage?: unknown } | undefined;
  const addUsage = streaming && requestStreamUsage && streamOptions?.include_usage !== true;
  const body = addUsage ? JSON.stringify({ ...fields, stream_options: { ...streamOptions, include_usage: true } }) : (request.raw ?? JSON.stringify(fields));
  return forward(upstream, { method: 'POST', path, body, streaming, meter: completionsMeter(addUsage) }, call);
}

/**
 * One of the vendors' other APIs (see ForwardedApi) at `path` of the upstream, with its meter;
 * stored responses are named by their id, which the route checked to be a plain name.
 */
export function forwardApi(upstream: Upstream, api: ForwardedApi, path: string, request: ApiRequest, call: ServiceCall, requestStreamUsage: boolean): Promise<ApiResult> {
  const body = request.body === undefined ? undefined : (request.raw ?? JSON.stringify(request.body));
  // embeddings have no stream, whatever the body says
  const streaming = api !== 'embeddings' && request.body?.stream === true;
  const post = (meter: UsageMeter | undefined): Promise<ApiResult> => forward(upstream, { method: 'POST', path, body, streaming, headers: request.headers, meter }, call);
  switch (api) {
    case 'completions':
      return forwardCompletions(upstream, path, request, call, requestStreamUsage);
    case 'messages':
      return post(messagesMeter);
    case 'responses':
      return post(responsesMeter);
    case 'embeddings':
      return post(embeddingsMeter);
    case 'messages.count_tokens':
      // counting tokens uses none
      return post(undefined);
    case 'responses.get':
    case 'responses.delete':
      return forward(upstream, { method: api === 'responses.get' ? 'GET' : 'DELETE', path: `${path}/${encodeURIComponent(request.id ?? '')}`, streaming: false }, call);
  }
}

/**
 * Tokens a call cost upstream, when the upstream could not say: ~4 bytes of the request per
 * prompt token (the JSON around the messages makes this an overestimate, the safe side for a
 * limit), and a token per streamed chunk (what OpenAI-compatible upstreams send per chunk).
 */
export function estimatedTokens(requestBody: string | Buffer, chunksSent: number): number {
  return Math.ceil(Buffer.byteLength(requestBody) / 4) + chunksSent;
}

/**
 * An error event as the caller may see it: its message and code never quote the secret sent.
 * OpenAI's and Anthropic's carry `error: {message, code}`; the Responses API's `error` event has
 * them at the top (`{"type":"error","code","message"}`), its response.failed in `response.error`.
 */
function withoutSecret(data: string, secret: string | undefined): string {
  const event = parseJson(data);
  if (!isObject(event)) return data;
  // a chunk that merely says "error" somewhere (in its content, say) keeps its fields as they are
  const redacted: Json = event.type === 'error' ? redactedError(event, secret) : { ...event };
  if (isObject(event.error)) redacted.error = redactedError(event.error, secret);
  if (isObject(event.response) && isObject(event.response.error)) redacted.response = { ...event.response, error: redactedError(event.response.error, secret) };
  return JSON.stringify(redacted);
}

function redactedError(error: Json, secret: string | undefined): Json {
  const message = typeof error.message === 'string' ? upstreamMessage(error.message, secret) : error.message;
  // a code quoting the secret is no code to pass on
  const code = typeof error.code === 'string' && upstreamMessage(error.code, secret) !== error.code ? undefined : error.code;
  return { ...error, message, code };
}

/**
 * Tells `call.onResponseModel` the model an answer or event names: OpenAI's at the top,
 * Anthropic's message_start in `message`, the Responses API's in `response`. Whether it named one.
 */
function reportModel(call: ServiceCall, value: unknown): boolean {
  if (!call.onResponseModel || !isObject(value)) return false;
  const model = answerModelOf(value) ?? answerModelOf(value.message) ?? answerModelOf(value.response);
  if (model) call.onResponseModel(model);
  return model !== undefined;
}
