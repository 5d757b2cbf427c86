import { ApiError } from '../errors.js';
import { forwardChatCompletions } from './chat-forward.js';
import { readServerSentEvents } from './sse-reader.js';
import { isOwnErrorCode, MAX_ANSWER_BYTES, upstreamMessage, type Upstream } from './upstream.js';
import type { AisService, ChatCompletionsRequest, ChatCompletionsResult, ProcessRequest, ResponseEvent, ResponseFinal, ServiceCall } from './types.js';

/**
 * aisbreaker:network: forwards to another aisbreaker gateway or AIsBreaker server, configured by
 * the operator. The service to use there follows the prefix: `aisbreaker:network/chat:dummy`.
 * Its secret is a token of that server, or "{{secret}}" to pass the caller's own token on.
 * AIsBreaker answers of /api/v1/process carry no LLM-token usage: those calls count here as
 * requests only (unless the caller leaves early: see forwardChatCompletions' estimate).
 */
export class AisNetworkService implements AisService {
  readonly needsSecret = true;
  readonly defaultEngine = undefined;

  constructor(private readonly upstream: Upstream) {}

  chatCompletions(request: ChatCompletionsRequest, call: ServiceCall): Promise<ChatCompletionsResult> {
    // this gateway's LLM-token limits count what a call uses wherever it is served: a stream's usage
    // is asked for, as from any OpenAI-compatible upstream (the remote counts its own limits apart)
    return forwardChatCompletions(this.upstream, request, call, { path: '/v1/chat/completions', requestStreamUsage: true });
  }

  async process(request: ProcessRequest, call: ServiceCall): Promise<ResponseFinal> {
    const streaming = call.onProgress !== undefined;
    const body = JSON.stringify({ service: { serviceId: call.engine }, request: { ...request, stream: streaming } });
    const response = await this.upstream.post('/api/v1/process', body, call.secret, call.signal);
    if (!streaming) return this.upstream.parseAnswer((await this.upstream.readAll(response.body, call.signal)).toString('utf8')) as ResponseFinal;

    try {
      for await (const event of readServerSentEvents(response.body, MAX_ANSWER_BYTES)) {
        const data = this.upstream.parseAnswer(event.data);
        if (event.event === 'progress') await call.onProgress?.(data as ResponseEvent);
        else if (event.event === 'final') return data as ResponseFinal;
        else if (event.event === 'error') throw remoteError(data, call.secret);
      }
    } catch (err) {
      throw this.upstream.failure(err, call.signal);
    }
    throw new ApiError(502, 'UPSTREAM_ERROR', `service "${this.upstream.serviceId}" ended its stream without a final answer`);
  }

  models(): string[] {
    return [];
  }

  close(): Promise<void> {
    return this.upstream.close();
  }
}

/** The remote's `error` event carries our envelope: its code and message pass on. */
function remoteError(data: unknown, secret: string | undefined): ApiError {
  const error = (data as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  const message = typeof error?.message === 'string' ? upstreamMessage(error.message, secret) : 'the remote service failed';
  const code = typeof error?.code === 'string' && isOwnErrorCode(error.code) ? error.code : 'UPSTREAM_ERROR';
  return new ApiError(502, code, message);
}
