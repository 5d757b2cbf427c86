import { Router, type Request, type RequestHandler } from 'express';
import { z } from 'zod/v4';
import { setAnthropicRateLimitHeaders } from '../quota/headers.js';
import { MAX_SERVICE_ID_LENGTH } from '../token/claims.js';
import { zodIssueToApiError } from '../token/mint-request.js';
import { messagesViaChatCompletions } from '../services/messages-to-chat.js';
import type { ApiRequest, ApiResult, ForwardedApi } from '../services/types.js';
import { anthropicErrorBody, anthropicErrorHandler } from './anthropic-errors.js';
import { jsonBody, quotedKeys, saysWhatWasChecked } from './body.js';
import { MAX_CHAT_BODY, MAX_MESSAGES } from './openai.js';
import { notOffered } from './offered-apis.js';
import { relay, type StreamFraming } from './relay.js';
import { prepareServiceCall, type ServiceCallDeps } from './service-call.js';

/**
 * What the gateway itself needs of a Messages request; every other field (system, tools,
 * thinking, cache_control, metadata, ...) is the upstream's business and passes on untouched.
 */
const messagesSchema = z.looseObject({
  model: z.string({ error: 'must be a string' }).min(1, { error: 'must not be empty' }).max(MAX_SERVICE_ID_LENGTH),
  messages: z.array(z.unknown(), { error: 'must be an array' }).min(1, { error: 'must not be empty' }).max(MAX_MESSAGES, { error: `at most ${MAX_MESSAGES} messages` }),
  stream: z.boolean({ error: 'must be a boolean' }).optional(),
});

const CHECKED_KEYS = quotedKeys('model', 'stream');

/** Anthropic's own headers, passed through as the caller sent them. */
const PASSED_HEADERS = ['anthropic-version', 'anthropic-beta'] as const;

/** Anthropic's streams end with message_stop; a failure in one is an `error` event. */
const ANTHROPIC_STREAM: StreamFraming = { errorEvent: (err) => ({ event: 'error', data: JSON.stringify(anthropicErrorBody(err)) }) };

function passedHeaders(req: Request): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of PASSED_HEADERS) {
    const value = req.headersDistinct[name];
    if (value !== undefined) headers[name] = value.join(',');
  }
  return headers;
}

/**
 * The Anthropic Messages API: `POST /v1/messages` (JSON, or `stream: true` with Anthropic's
 * events) and `POST /v1/messages/count_tokens`, whatever the query string says (Claude Code adds
 * `?beta=true`). An anthropic service gets the request as it came; a service that speaks chat
 * completions gets it translated. Errors answer in Anthropic's shape.
 */
export function anthropicRoutes(guard: RequestHandler[], deps: ServiceCallDeps): Router {
  const router = Router();

  const handler = (api: ForwardedApi & ('messages' | 'messages.count_tokens')): RequestHandler => async (req, res) => {
    const parsed = messagesSchema.safeParse(req.body);
    if (!parsed.success) throw zodIssueToApiError(parsed.error);
    // the fields of the parsed JSON itself, not of zod's copy (see the chat completions route)
    const body = req.body as { model: string; stream?: boolean; [field: string]: unknown };
    const target = deps.registry().resolveModel(body.model, 'messages');
    const prepared = await prepareServiceCall(deps, req, res, target);
    setAnthropicRateLimitHeaders(res, Date.now());
    const { service } = target;
    const call = prepared.call;
    const forward = service.forward?.bind(service);
    let run: () => Promise<ApiResult>;
    if (forward !== undefined && service.forwards.includes(api)) {
      const raw = req.rawBody;
      const unchanged = target.engine === body.model && raw !== undefined && saysWhatWasChecked(raw, CHECKED_KEYS);
      const request: ApiRequest = { ...(unchanged ? { body, raw } : { body: { ...body, model: target.engine } }), headers: passedHeaders(req) };
      run = () => forward(api, request, call);
    } else if (api === 'messages') {
      run = () => messagesViaChatCompletions(service, body, call);
    } else {
      throw notOffered(target, api);
    }
    await relay(req, res, deps, prepared, () => run(), ANTHROPIC_STREAM);
  };

  const body = jsonBody(MAX_CHAT_BODY, ['application/json'], { keepRaw: true });
  router.post('/v1/messages', ...guard, ...body, handler('messages'));
  router.post('/v1/messages/count_tokens', ...guard, ...body, handler('messages.count_tokens'));
  router.use('/v1/messages', anthropicErrorHandler);
  return router;
}
