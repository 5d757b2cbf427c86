import { ApiError } from '../errors.js';
import { forwardChatCompletions } from './forward.js';
import { readServerSentEvents } from './sse-reader.js';
import { isChainedErrorCode, MAX_ANSWER_BYTES, upstreamMessage, type Upstream } from './upstream.js';
import type { AisService, ChatCompletionsRequest, ChatCompletionsResult, ProcessRequest, ResponseEvent, ResponseFinal, ServiceCall } from './types.js';

/**
 * aisbreaker:network: forwards to another aisbreaker gateway or AIsBreaker server, configured by
 * the operator or (where AISBREAKER_NETWORK_URLS allows it) named by the request. The service to
 * use there follows the prefix (`aisbreaker:network/chat:dummy`) or is the request's
 * `forward2ServiceProps`. Its secret is a token of that server, or "{{secret}}" to pass the
 * caller's own token on. The remote's errors keep their status and message (see UpstreamOptions.chained).
 * Answers of /api/v1/process count against LLM-token limits here when they carry the remote's
 * `usage.totalTokens` (an aisbreaker gateway's do; an original AIsBreaker server's do not: those
 * calls count as requests only).
 */
export class AisNetworkService implements AisService {
  readonly needsSecret = true;
  readonly defaultEngine = undefined;
  readonly forwards = [];

  constructor(private readonly upstream: Upstream) {}

  chatCompletions(request: ChatCompletionsRequest, call: ServiceCall): Promise<ChatCompletionsResult> {
    // this gateway's LLM-token limits count what a call uses wherever it is served: a stream's usage
    // is asked for, as from any OpenAI-compatible upstream (the remote counts its own limits apart)
    return forwardChatCompletions(this.upstream, request, call, { path: '/v1/chat/completions', requestStreamUsage: true });
  }

  async process(request: ProcessRequest, call: ServiceCall): Promise<ResponseFinal> {
    const streaming = call.onProgress !== undefined;
    const body = JSON.stringify({ service: call.forward ?? { serviceId: call.engine }, request: { ...request, stream: streaming } });
    const response = await this.upstream.post('/api/v1/process', body, call.secret, call.signal, call.byOperatorKey, call.traceHeaders);
    if (!streaming) return reportRemoteUsage(this.upstream.parseAnswer((await this.upstream.readAll(response.body, call.signal)).toString('utf8')) as ResponseFinal, call);

    try {
      for await (const event of readServerSentEvents(response.body, MAX_ANSWER_BYTES)) {
        const data = this.upstream.parseAnswer(event.data);
        if (event.event === 'progress') await call.onProgress?.(data as ResponseEvent);
        else if (event.event === 'final') return reportRemoteUsage(data as ResponseFinal, call);
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

/** A remote gateway's answer tells its upstream's token count: this gateway's LLM-token limits count it too. */
function reportRemoteUsage(final: ResponseFinal, call: ServiceCall): ResponseFinal {
  const tokens = (final as { usage?: { totalTokens?: unknown } } | null)?.usage?.totalTokens;
  if (typeof tokens === 'number' && Number.isFinite(tokens) && tokens >= 0) call.onUsage?.({ total_tokens: tokens });
  return final;
}

/** The remote's `error` event carries our envelope (or AIsBreaker's `{message, statusCode}`): its status, code and message pass on. */
function remoteError(data: unknown, secret: string | undefined): ApiError {
  const error = (data as { error?: { code?: unknown; message?: unknown; statusCode?: unknown } } | null)?.error;
  const message = typeof error?.message === 'string' ? upstreamMessage(error.message, secret) : 'the remote service failed';
  const status = typeof error?.statusCode === 'number' && Number.isInteger(error.statusCode) && error.statusCode >= 400 && error.statusCode <= 599 ? error.statusCode : 502;
  const code = typeof error?.code === 'string' && isChainedErrorCode(error.code) ? error.code : 'UPSTREAM_ERROR';
  return new ApiError(status, code, message);
}
