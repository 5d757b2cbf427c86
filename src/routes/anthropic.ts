import { Router, type Request, type RequestHandler, type Response } from 'express';
import { z } from 'zod/v4';
import { setAnthropicRateLimitHeaders } from '../quota/headers.js';
import { messagesViaChatCompletions } from '../services/messages-to-chat.js';
import { anthropicErrorBody, anthropicErrorHandler } from './anthropic-errors.js';
import { jsonBody } from './body.js';
import { forwardedSchema, relayForwarded } from './forwarded.js';
import { MAX_CHAT_BODY, MAX_MESSAGES } from './openai.js';
import type { StreamFraming } from './relay.js';
import type { ServiceCallDeps } from './service-call.js';

/**
 * What the gateway itself needs of a Messages request; every other field (system, tools,
 * thinking, cache_control, metadata, ...) is the upstream's business and passes on untouched.
 */
const messagesSchema = forwardedSchema.extend({
  messages: z.array(z.unknown(), { error: 'must be an array' }).min(1, { error: 'must not be empty' }).max(MAX_MESSAGES, { error: `at most ${MAX_MESSAGES} messages` }),
});

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
  const route = { family: 'messages', framing: ANTHROPIC_STREAM, schema: messagesSchema, headers: passedHeaders, onAdmitted: (res: Response) => setAnthropicRateLimitHeaders(res, Date.now()) } as const;
  const body = jsonBody(MAX_CHAT_BODY, ['application/json'], { keepRaw: true });
  router.post('/v1/messages', ...guard, ...body, async (req, res) => {
    await relayForwarded(req, res, deps, { ...route, api: 'messages', translated: (target, messages, call) => messagesViaChatCompletions(target.service, messages, call) });
  });
  router.post('/v1/messages/count_tokens', ...guard, ...body, async (req, res) => {
    await relayForwarded(req, res, deps, { ...route, api: 'messages.count_tokens' });
  });
  router.use('/v1/messages', anthropicErrorHandler);
  return router;
}
