import { decodeConversationState, encodeConversationState, textMessages } from './conversation.js';
import { chunkText, completionText } from './openai-format.js';
import { MAX_ANSWER_BYTES, type Upstream } from './upstream.js';
import type { AisService, ApiRequest, ApiResult, ChatCompletionsRequest, ChatCompletionsResult, ForwardedApi, ProcessRequest, ResponseFinal, ServiceCall } from './types.js';

export interface UpstreamServiceOptions {
  defaultEngine: string;
  /** engines listed by GET /v1/models (and the bare model names that go to this service) */
  models: string[];
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

  close(): Promise<void> {
    return this.upstream.close();
  }
}
