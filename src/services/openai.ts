import { forwardChatCompletions } from './chat-forward.js';
import { decodeConversationState, encodeConversationState, textMessages } from './conversation.js';
import { chunkText, completionText } from './openai-format.js';
import { MAX_ANSWER_BYTES, type Upstream } from './upstream.js';
import type { AisService, ChatCompletionsRequest, ChatCompletionsResult, ProcessRequest, ResponseFinal, ServiceCall } from './types.js';

export interface OpenAiServiceOptions {
  defaultEngine: string;
  /** engines listed by GET /v1/models */
  models: string[];
  /** see ForwardOptions.requestStreamUsage; off for upstreams that refuse `stream_options` */
  streamUsage: boolean;
}

/**
 * chat:openai.com and every other OpenAI-compatible upstream. /v1/chat/completions passes
 * straight through; /api/v1/process is translated to a chat completion and back, with the
 * conversation history carried in `conversationState` as the local services do.
 */
export class OpenAiCompatibleService implements AisService {
  readonly needsSecret = true;
  readonly defaultEngine: string;

  constructor(
    private readonly upstream: Upstream,
    private readonly options: OpenAiServiceOptions,
  ) {
    this.defaultEngine = options.defaultEngine;
  }

  chatCompletions(request: ChatCompletionsRequest, call: ServiceCall): Promise<ChatCompletionsResult> {
    return forwardChatCompletions(this.upstream, request, call, { path: '/chat/completions', requestStreamUsage: this.options.streamUsage });
  }

  async process(request: ProcessRequest, call: ServiceCall): Promise<ResponseFinal> {
    const started = Date.now();
    const history = [...decodeConversationState(request.conversationState), ...textMessages(request.inputs)];
    const streaming = call.onProgress !== undefined;
    const result = await this.chatCompletions({ body: { model: call.engine, messages: history, ...(streaming ? { stream: true } : {}) } }, call);

    let text = '';
    if (result.kind === 'json') {
      text = completionText(this.upstream.parseAnswer(result.body.toString('utf8')));
    } else {
      for await (const data of result.chunks) {
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
    return this.options.models;
  }

  close(): Promise<void> {
    return this.upstream.close();
  }
}
