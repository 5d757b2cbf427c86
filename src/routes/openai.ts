import { Router, type RequestHandler } from 'express';
import { z } from 'zod/v4';
import { secretForService } from '../auth/service-secret.js';
import { errorEnvelope } from '../errors.js';
import { coversServiceId, MAX_SERVICE_ID_LENGTH } from '../token/claims.js';
import { zodIssueToApiError } from '../token/mint-request.js';
import type { ServiceRegistry, ServiceTarget } from '../services/registry.js';
import type { ChatCompletionsBody, ChatCompletionsRequest } from '../services/types.js';
import { assertNoLookalikeKeys, jsonBody, MB, quotedKeys, saysWhatWasChecked } from './body.js';
import { prepareServiceCall, type ServiceCallDeps } from './service-call.js';
import { relay, type StreamFraming } from './relay.js';

export const MAX_MESSAGES = 2048;
export const MAX_CHAT_BODY = 4 * MB;

/**
 * What the gateway itself needs of a chat completions request; every other field (tools,
 * temperature, response_format, ...) is the upstream's business and passes on untouched.
 */
export const chatCompletionsSchema = z.looseObject({
  model: z.string({ error: 'must be a string' }).min(1, { error: 'must not be empty' }).max(MAX_SERVICE_ID_LENGTH),
  messages: z.array(z.unknown(), { error: 'must be an array' }).min(1, { error: 'must not be empty' }).max(MAX_MESSAGES, { error: `at most ${MAX_MESSAGES} messages` }),
  stream: z.boolean({ error: 'must be a boolean' }).nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean({ error: 'must be a boolean' }).optional() }, { error: 'must be an object' }).nullish(),
});

/**
 * The OpenAI-compatible API: `POST /v1/chat/completions` (JSON, or `stream: true` server-sent
 * events ending with `data: [DONE]`) and `GET /v1/models`, for tokens and operator keys alike,
 * so the official OpenAI SDKs work with `baseURL` set to the gateway.
 */
export function openAiRoutes(guard: RequestHandler[], deps: ServiceCallDeps): Router {
  const router = Router();

  router.post('/v1/chat/completions', ...guard, ...jsonBody(MAX_CHAT_BODY, ['application/json'], { keepRaw: true }), async (req, res) => {
    const parsed = chatCompletionsSchema.safeParse(req.body);
    if (!parsed.success) throw zodIssueToApiError(parsed.error);
    // the fields of the parsed JSON itself, not of zod's copy: zod assigns key by key, so a
    // "__proto__" key would become the copy's prototype and lend it fields the caller never sent
    const { stream, stream_options, ...rest } = req.body as ChatCompletionsBody;
    assertNoLookalikeKeys(req.body as object, DECIDED_KEYS);
    if (stream_options) assertNoLookalikeKeys(stream_options, ['include_usage'], 'stream_options.');
    // null means "not set" in OpenAI's API: upstreams get the field only when it says something
    const body: ChatCompletionsBody = { ...rest, ...(stream != null ? { stream } : {}), ...(stream_options != null ? { stream_options } : {}) };
    const target = deps.registry().resolveModel(body.model);
    const first = await prepareServiceCall(deps, req, res, target);
    const raw = req.rawBody;
    const unchanged = target.engine === body.model && stream !== null && stream_options !== null && raw !== undefined && saysWhatWasChecked(raw, CHECKED_KEYS);
    // a fallback gets the same call with its own model
    const requestFor = (to: ServiceTarget): ChatCompletionsRequest => (to === target && unchanged ? { body, raw } : { body: { ...body, model: to.engine } });

    await relay(req, res, deps, first, (call) => call.target.service.chatCompletions(requestFor(call.target), call.call), OPENAI_STREAM);
  });

  router.get('/v1/models', ...guard, async (req, res) => {
    const created = 0;
    const ids = await modelsFor(req.principal, deps.registry());
    res.json({ object: 'list', data: ids.map((id) => ({ id, object: 'model', created, owned_by: ownerOf(id) })) });
  });

  return router;
}

/** OpenAI's streams end with `data: [DONE]`; a failure in one is a chunk carrying `error`. */
export const OPENAI_STREAM: StreamFraming = { done: '[DONE]', errorEvent: (err) => ({ data: JSON.stringify({ error: errorEnvelope(err).error }) }) };

/** The fields the gateway decides on: what it checks must be what the upstream reads. */
const DECIDED_KEYS = ['model', 'stream', 'stream_options'];
// include_usage too (inside stream_options): a parser keeping the first of two would ask for no usage
const CHECKED_KEYS = quotedKeys(...DECIDED_KEYS, 'include_usage');

/**
 * The models a credential may use: for a token, every service it has a secret for (or that needs
 * none) with its engines: configured, or as the upstream lists them for that secret, when the
 * token names the service for it (a secret for every service, `""`, or an open-access caller's
 * bearer, is not sent to every upstream just to list); for an operator key, the models its roles list.
 */
async function modelsFor(principal: Express.Request['principal'], registry: ServiceRegistry): Promise<string[]> {
  if (!principal) return [];
  if (principal.kind === 'key') return [...principal.key.models.keys()].sort();
  const perService = await Promise.all(
    registry.entries().map(async (entry) => {
      const usable = (id: string): boolean => !entry.service.needsSecret || secretForService(principal, id, undefined) !== undefined;
      const named = principal.kind === 'token' && principal.claims.serviceSecrets.some((s) => s.serviceId !== '' && coversServiceId(s.serviceId, entry.prefix));
      const secret = named ? secretForService(principal, entry.prefix, undefined) : undefined;
      const engines = secret !== undefined && entry.service.listModels ? await entry.service.listModels(secret) : entry.service.models();
      return [entry.prefix, ...engines.map((engine) => `${entry.prefix}/${engine}`)].filter(usable);
    }),
  );
  return perService.flat();
}

function ownerOf(id: string): string {
  const colon = id.indexOf(':');
  const slash = id.indexOf('/');
  return colon > 0 && (slash < 0 || colon < slash) ? id.slice(colon + 1, slash < 0 ? undefined : slash) : 'aisbreaker';
}
