import { chatResultOf, messagesRequestOf } from './chat-to-messages.js';
import { forwardApi } from './forward.js';
import { upstreamMessage, UpstreamError } from './upstream.js';
import { UpstreamService } from './upstream-service.js';
import type { ApiRequest, ApiResult, ChatCompletionsRequest, ChatCompletionsResult, ForwardedApi, ServiceCall } from './types.js';

/** The Anthropic API version sent when the caller names none. */
export const DEFAULT_ANTHROPIC_VERSION = '2023-06-01';

/** Anthropic's APIs under its base URL (which, as Anthropic's SDKs have it, has no /v1). */
const ANTHROPIC_PATHS = {
  messages: '/v1/messages',
  'messages.count_tokens': '/v1/messages/count_tokens',
} satisfies Partial<Record<ForwardedApi, string>>;
type AnthropicApi = keyof typeof ANTHROPIC_PATHS;

/**
 * chat:anthropic.com and every other Anthropic-compatible upstream: /v1/messages passes straight
 * through with the caller's anthropic-version and anthropic-beta; /v1/chat/completions and
 * /api/v1/process are translated to Messages and back. The secret travels as `x-api-key`.
 */
export class AnthropicService extends UpstreamService {
  readonly forwards = Object.keys(ANTHROPIC_PATHS) as AnthropicApi[];
  protected readonly modelListing = { path: '/v1/models', headers: { 'anthropic-version': DEFAULT_ANTHROPIC_VERSION } };

  /** one of `forwards` (the routes check) */
  forward(api: ForwardedApi, request: ApiRequest, call: ServiceCall): Promise<ApiResult> {
    const headers = { 'anthropic-version': DEFAULT_ANTHROPIC_VERSION, ...request.headers };
    return forwardApi(this.upstream, api, ANTHROPIC_PATHS[api as AnthropicApi], { ...request, headers }, call, false);
  }

  async chatCompletions(request: ChatCompletionsRequest, call: ServiceCall): Promise<ChatCompletionsResult> {
    const result = await this.forward('messages', { body: messagesRequestOf(request.body, call.engine) }, call);
    const parse = (data: string): unknown => this.upstream.parseAnswer(data);
    const failed = (message: string): Error => new UpstreamError(502, 'UPSTREAM_ERROR', 'stream-error', `service "${this.upstream.serviceId}" failed: ${upstreamMessage(message, call.secret)}`);
    return chatResultOf(result, request.body.model, request.body.stream_options?.include_usage === true, parse, failed);
  }
}
