import { Router, type RequestHandler } from 'express';
import { invalidRequest } from '../errors.js';
import type { ForwardedApi } from '../services/types.js';
import { jsonBody } from './body.js';
import { relayForwarded } from './forwarded.js';
import { MAX_CHAT_BODY, OPENAI_STREAM } from './openai.js';
import { relay, type StreamFraming } from './relay.js';
import { prepareServiceCall, type ServiceCallDeps } from './service-call.js';

/** The Responses API's streams end with response.completed (or .failed); a failure in one is an `error` event. */
const RESPONSES_STREAM: StreamFraming = {
  errorEvent: (err) => ({ event: 'error', data: JSON.stringify({ type: 'error', code: err.code, message: err.message, param: null }) }),
};

/** Stored responses are named by ids like "resp_..."; anything else never reaches a path. */
const RESPONSE_ID = /^[A-Za-z0-9_-]{1,256}$/;

/**
 * OpenAI's APIs beside chat completions, forwarded to `openai` services as they come:
 * `POST /v1/responses` (JSON, or its `response.*` events) with `GET` and `DELETE
 * /v1/responses/{id}`, `POST /v1/embeddings` and `POST /v1/completions` (legacy text
 * completions, streamed like chat completions). Other kinds of service get a 400 naming what
 * they answer. Stored responses name no model: they are asked of `defaults.service`.
 */
export function openAiApiRoutes(guard: RequestHandler[], deps: ServiceCallDeps): Router {
  const router = Router();
  const body = jsonBody(MAX_CHAT_BODY, ['application/json'], { keepRaw: true });
  const forwarded = (api: ForwardedApi, framing: StreamFraming): RequestHandler => (req, res) => relayForwarded(req, res, deps, { api, family: 'openai', framing });
  router.post('/v1/responses', ...guard, ...body, forwarded('responses', RESPONSES_STREAM));
  router.post('/v1/embeddings', ...guard, ...body, forwarded('embeddings', OPENAI_STREAM));
  router.post('/v1/completions', ...guard, ...body, forwarded('completions', OPENAI_STREAM));

  const stored = (api: 'responses.get' | 'responses.delete'): RequestHandler => async (req, res) => {
    const id = String(req.params.id);
    if (!RESPONSE_ID.test(id)) throw invalidRequest('id', 'must be a response id like "resp_..."');
    const registry = deps.registry();
    const target = registry.resolve(registry.defaults.service, 'model');
    const forward = target.service.forwards.includes(api) ? target.service.forward?.bind(target.service) : undefined;
    if (forward === undefined) throw invalidRequest('id', `the default service "${target.prefix}" keeps no responses`, { service: target.prefix });
    const prepared = await prepareServiceCall(deps, req, res, target);
    // stored responses live at that service alone: no fallback stands in
    await relay(req, res, deps, { ...prepared, target: { ...prepared.target, fallbacks: [] } }, (call) => forward(api, { id }, call.call), OPENAI_STREAM);
  };
  router.get('/v1/responses/:id', ...guard, stored('responses.get'));
  router.delete('/v1/responses/:id', ...guard, stored('responses.delete'));
  return router;
}
