import { processViaChatCompletions } from './chat-process.js';
import { forwardApi, forwardChatCompletions } from './forward.js';
import type { Upstream } from './upstream.js';
import type { AisService, ApiRequest, ApiResult, ChatCompletionsRequest, ChatCompletionsResult, ForwardedApi, ProcessRequest, ResponseFinal, ServiceCall } from './types.js';

export interface OpenAiServiceOptions {
  defaultEngine: string;
  /** engines listed by GET /v1/models */
  models: string[];
  /** see ChatForwardOptions.requestStreamUsage; off for upstreams that refuse `stream_options` */
  streamUsage: boolean;
}

/** OpenAI's APIs beside chat completions, under the upstream's base URL (which ends in /v1). */
const OPENAI_PATHS = {
  responses: '/responses',
  'responses.get': '/responses',
  'responses.delete': '/responses',
  embeddings: '/embeddings',
  completions: '/completions',
} satisfies Partial<Record<ForwardedApi, string>>;
type OpenAiApi = keyof typeof OPENAI_PATHS;

/**
 * chat:openai.com and every other OpenAI-compatible upstream. /v1/chat/completions and OpenAI's
 * other APIs pass straight through; /api/v1/process is translated to a chat completion and back.
 */
export class OpenAiCompatibleService implements AisService {
  readonly needsSecret = true;
  readonly defaultEngine: string;
  readonly forwards = Object.keys(OPENAI_PATHS) as OpenAiApi[];

  constructor(
    private readonly upstream: Upstream,
    private readonly options: OpenAiServiceOptions,
  ) {
    this.defaultEngine = options.defaultEngine;
  }

  chatCompletions(request: ChatCompletionsRequest, call: ServiceCall): Promise<ChatCompletionsResult> {
    return forwardChatCompletions(this.upstream, request, call, { path: '/chat/completions', requestStreamUsage: this.options.streamUsage });
  }

  forward(api: ForwardedApi, request: ApiRequest, call: ServiceCall): Promise<ApiResult> {
    return forwardApi(this.upstream, api, OPENAI_PATHS[api as OpenAiApi], request, call, this.options.streamUsage);
  }

  process(request: ProcessRequest, call: ServiceCall): Promise<ResponseFinal> {
    return processViaChatCompletions((chat, c) => this.chatCompletions(chat, c), this.upstream, request, call);
  }

  models(): string[] {
    return this.options.models;
  }

  close(): Promise<void> {
    return this.upstream.close();
  }
}
