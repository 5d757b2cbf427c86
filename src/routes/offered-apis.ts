import { invalidRequest, type ApiError } from '../errors.js';
import type { ServiceTarget } from '../services/registry.js';
import type { ForwardedApi } from '../services/types.js';

/** The routes of the forwarded APIs, as a refusal names them. */
const ROUTES: Record<ForwardedApi, string> = {
  messages: 'POST /v1/messages',
  'messages.count_tokens': 'POST /v1/messages/count_tokens',
  responses: 'POST /v1/responses',
  'responses.get': 'GET /v1/responses/{id}',
  'responses.delete': 'DELETE /v1/responses/{id}',
  embeddings: 'POST /v1/embeddings',
  completions: 'POST /v1/completions',
};

/** What every service answers, translated where it must be. */
const ALWAYS = ['POST /v1/chat/completions', 'POST /v1/messages', 'POST /api/v1/process'];

/** 400 for an API the model's service does not have, naming the routes it does answer. */
export function notOffered(target: ServiceTarget, api: ForwardedApi): ApiError {
  const offers = [...new Set([...ALWAYS, ...target.service.forwards.map((offered) => ROUTES[offered])])];
  return invalidRequest('model', `service "${target.prefix}" does not offer ${ROUTES[api]}; it answers ${offers.join(', ')}`, { service: target.prefix, offers });
}
