import { createHash } from 'node:crypto';
import { MAX_SERVICE_ID_LENGTH } from '../token/claims.js';
import { decodeConversationState, encodeConversationState, textMessages } from './conversation.js';
import { chunkText, completionText } from './openai-format.js';
import { MAX_ANSWER_BYTES, type Upstream } from './upstream.js';
import type { AisService, ApiRequest, ApiResult, ChatCompletionsRequest, ChatCompletionsResult, ForwardedApi, ProcessRequest, ResponseFinal, ServiceCall } from './types.js';

/** How long an upstream's own model list is kept, per secret: long enough for a client's start-up burst. */
const UPSTREAM_LIST_TTL_MS = 60_000;
const MAX_CACHED_LISTS = 1024;
const MAX_LISTED_MODELS = 1024;
const LIST_TIMEOUT_MS = 10_000;

/** Where an upstream lists its models, and the headers the listing needs. */
export interface ModelListing {
  path: string;
  headers?: Record<string, string>;
}

export interface UpstreamServiceOptions {
  defaultEngine: string;
  /** engines listed by GET /v1/models (and the bare model names that go to this service) */
  models: string[];
  /** without `models`, GET /v1/models asks the upstream's own list with the caller's secret */
  modelsFromUpstream: boolean;
}

/**
 * What the services with a vendor's upstream (openai, anthropic) share: a secret is needed, the
 * configured engines, and /api/v1/process translated to a chat completion and back, with the
 * conversation history carried in `conversationState` as the local services do.
 */
export abstract class UpstreamService implements AisService {
  readonly needsSecret = true;
  readonly defaultEngine: string;
  abstract readonly forwards: readonly ForwardedApi[];
  protected abstract readonly modelListing: ModelListing;
  /** the upstream's own lists by sha256 of the secret they were asked with */
  private readonly upstreamLists = new Map<string, { until: number; models: Promise<string[]> }>();

  constructor(
    protected readonly upstream: Upstream,
    private readonly engines: UpstreamServiceOptions,
  ) {
    this.defaultEngine = engines.defaultEngine;
  }

  abstract chatCompletions(request: ChatCompletionsRequest, call: ServiceCall): Promise<ChatCompletionsResult>;
  abstract forward(api: ForwardedApi, request: ApiRequest, call: ServiceCall): Promise<ApiResult>;

  async process(request: ProcessRequest, call: ServiceCall): Promise<ResponseFinal> {
    const started = Date.now();
    const history = [...decodeConversationState(request.conversationState), ...textMessages(request.inputs)];
    const streaming = call.onProgress !== undefined;
    const result = await this.chatCompletions({ body: { model: call.engine, messages: history, ...(streaming ? { stream: true } : {}) } }, call);

    let text = '';
    if (result.kind === 'json') {
      text = completionText(this.upstream.parseAnswer(result.body.toString('utf8')));
    } else {
      for await (const { data } of result.events) {
        const delta = chunkText(this.upstream.parseAnswer(data));
        if (delta === '') continue;
        text += delta;
        // the whole answer is held for the final event: bounded like a whole JSON answer
        if (text.length > MAX_ANSWER_BYTES) throw this.upstream.tooLarge();
        await call.onProgress?.({ outputs: [{ text: { index: 0, role: 'assistant', content: delta, isDelta: true, isProcessing: true } }] });
      }
    }
    history.push({ role: 'assistant', content: text });
    return {
      outputs: [{ text: { index: 0, role: 'assistant', content: text } }],
      conversationState: encodeConversationState(history),
      usage: { engine: { serviceId: call.serviceId }, totalMilliseconds: Date.now() - started },
    };
  }

  models(): string[] {
    return this.engines.models;
  }

  /**
   * The configured `models`; when none are configured and the operator allowed it
   * (`modelsFromUpstream`), the upstream's own list asked with the caller's secret, kept a minute
   * per secret (a failed listing is not kept, and lists nothing).
   */
  listModels(secret: string): Promise<string[]> {
    if (this.engines.models.length > 0 || !this.engines.modelsFromUpstream) return Promise.resolve(this.engines.models);
    const key = createHash('sha256').update(secret).digest('base64url');
    const now = Date.now();
    const cached = this.upstreamLists.get(key);
    if (cached !== undefined && cached.until > now) return cached.models;
    const models = this.askUpstreamModels(secret).catch(() => {
      this.upstreamLists.delete(key);
      return [];
    });
    this.upstreamLists.delete(key);
    if (this.upstreamLists.size >= MAX_CACHED_LISTS) this.upstreamLists.delete(this.upstreamLists.keys().next().value as string);
    this.upstreamLists.set(key, { until: now + UPSTREAM_LIST_TTL_MS, models });
    return models;
  }

  /** OpenAI's and Anthropic's lists alike: `{"data":[{"id":...}, ...]}` */
  private async askUpstreamModels(secret: string): Promise<string[]> {
    // not the caller's signal: others may be waiting for the same cached answer
    const signal = AbortSignal.timeout(LIST_TIMEOUT_MS);
    const response = await this.upstream.send({ method: 'GET', path: this.modelListing.path, headers: this.modelListing.headers }, secret, signal);
    const answer = this.upstream.parseAnswer((await this.upstream.readAll(response.body, signal)).toString('utf8')) as { data?: unknown } | null;
    const data = Array.isArray(answer?.data) ? (answer.data as unknown[]) : [];
    return data
      .map((model) => (model as { id?: unknown } | null)?.id)
      .filter((id): id is string => typeof id === 'string' && id.length > 0 && id.length <= MAX_SERVICE_ID_LENGTH && !/\s/.test(id))
      .slice(0, MAX_LISTED_MODELS);
  }

  close(): Promise<void> {
    return this.upstream.close();
  }
}
