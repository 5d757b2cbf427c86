import { forwardApi, forwardChatCompletions } from './forward.js';
import type { Upstream } from './upstream.js';
import { UpstreamService, type UpstreamServiceOptions } from './upstream-service.js';
import type { ApiRequest, ApiResult, ChatCompletionsRequest, ChatCompletionsResult, ForwardedApi, ServiceCall } from './types.js';

export interface OpenAiServiceOptions extends UpstreamServiceOptions {
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
 * other APIs pass straight through; /v1/messages and /api/v1/process are translated to chat completions.
 */
export class OpenAiCompatibleService extends UpstreamService {
  readonly forwards = Object.keys(OPENAI_PATHS) as OpenAiApi[];
  protected readonly modelListing = { path: '/models' };

  constructor(
    upstream: Upstream,
    private readonly options: OpenAiServiceOptions,
  ) {
    super(upstream, options);
  }

  chatCompletions(request: ChatCompletionsRequest, call: ServiceCall): Promise<ChatCompletionsResult> {
    return forwardChatCompletions(this.upstream, request, call, { path: '/chat/completions', requestStreamUsage: this.options.streamUsage });
  }

  /** one of `forwards` (the routes check) */
  forward(api: ForwardedApi, request: ApiRequest, call: ServiceCall): Promise<ApiResult> {
    return forwardApi(this.upstream, api, OPENAI_PATHS[api as OpenAiApi], request, call, this.options.streamUsage);
  }
}
