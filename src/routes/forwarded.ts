import type { Request, Response } from 'express';
import { z } from 'zod/v4';
import type { ApiFamily, ServiceTarget } from '../services/registry.js';
import type { ApiRequest, ApiResult, ForwardedApi, ServiceCall } from '../services/types.js';
import { MAX_SERVICE_ID_LENGTH } from '../token/claims.js';
import { invalidRequest } from '../errors.js';
import { zodIssueToApiError } from '../token/mint-request.js';
import { assertNoLookalikeKeys, quotedKeys, saysWhatWasChecked } from './body.js';
import { notOffered } from './offered-apis.js';
import { relay, type StreamFraming } from './relay.js';
import { prepareServiceCall, type ServiceCallDeps } from './service-call.js';

export const modelField = z.string({ error: 'must be a string' }).min(1, { error: 'must not be empty' }).max(MAX_SERVICE_ID_LENGTH);

/** What the gateway itself needs of a forwarded request; every other field passes on untouched. */
export const forwardedSchema = z.looseObject({
  model: modelField,
  stream: z.boolean({ error: 'must be a boolean' }).optional(),
  // decides whether usage can be counted (a background response's comes later): a boolean, or refused
  background: z.boolean({ error: 'must be a boolean' }).optional(),
});

/** The fields the gateway decides on (stream_options: whether a completions stream reports its usage; background: whether its usage comes now). */
const DECIDED_KEYS = ['model', 'stream', 'stream_options', 'background'];
// include_usage too (inside stream_options): a parser keeping the first of two would ask for no usage
const CHECKED_KEYS = quotedKeys(...DECIDED_KEYS, 'include_usage');

export interface ForwardedRoute {
  api: ForwardedApi;
  family: ApiFamily;
  framing: StreamFraming;
  /** what the body must be, when more than `forwardedSchema` (which it must include) */
  schema?: z.ZodType;
  /** the API's own headers to pass through */
  headers?: (req: Request) => Record<string, string>;
  /** after the call was admitted, before the answer: e.g. the API's own rate-limit headers */
  onAdmitted?: (res: Response) => void;
  /** for a service that does not forward `api`: a translation; without one such services get 400 */
  translated?: (target: ServiceTarget, body: { model: string; [field: string]: unknown }, call: ServiceCall) => Promise<ApiResult>;
}

/**
 * A request to one of the vendors' other APIs (see ForwardedApi): its model resolved to a
 * service, checked and admitted as every call is, then forwarded as it came (the bytes as
 * received where they say what was checked, else with the service's own model name), translated,
 * or refused naming what the service answers.
 */
export async function relayForwarded(req: Request, res: Response, deps: ServiceCallDeps, route: ForwardedRoute): Promise<void> {
  const parsed = (route.schema ?? forwardedSchema).safeParse(req.body);
  if (!parsed.success) throw zodIssueToApiError(parsed.error);
  // the fields of the parsed JSON itself, not of zod's copy (see the chat completions route)
  const body = req.body as { model: string; stream_options?: unknown; [field: string]: unknown };
  // what the gateway checks must be what a case-insensitive upstream decoder reads
  assertNoLookalikeKeys(body, DECIDED_KEYS);
  if (typeof body.stream_options === 'object' && body.stream_options !== null) assertNoLookalikeKeys(body.stream_options, ['include_usage'], 'stream_options.');
  const target = deps.registry().resolveModel(body.model, route.family);
  const raw = req.rawBody;
  const headers = route.headers?.(req);
  /** how `to` answers the API: forwarded, translated, or not at all */
  const runFor = (to: ServiceTarget): ((call: ServiceCall) => Promise<ApiResult>) | undefined => {
    const forward = to.service.forwards.includes(route.api) ? to.service.forward?.bind(to.service) : undefined;
    if (forward !== undefined) {
      const unchanged = to === target && to.engine === body.model && raw !== undefined && saysWhatWasChecked(raw, CHECKED_KEYS);
      const request: ApiRequest = { ...(unchanged ? { body, raw } : { body: { ...body, model: to.engine } }), headers };
      return (call) => forward(route.api, request, call);
    }
    const translated = route.translated;
    return translated === undefined ? undefined : (call) => translated(to, body, call);
  };
  if (runFor(target) === undefined) throw notOffered(target, route.api);
  const prepared = await prepareServiceCall(deps, req, res, target);
  // a background response reports its usage later, to whoever fetches it: an LLM-token limit
  // could not count it (the quota guard set settleLlmTokens for a credential with such a limit)
  if (route.api === 'responses' && body.background === true && req.settleLlmTokens !== undefined) {
    throw invalidRequest('background', 'not with a credential whose LLM tokens are limited: the usage of a background response could not be counted');
  }
  route.onAdmitted?.(res);
  // a fallback (see withFallbacks) that does not answer this API cannot stand in
  const answers = (fallback: ServiceTarget['fallbacks'][number]): boolean => {
    try {
      return runFor(deps.registry().resolve(fallback.model === undefined ? fallback.service : `${fallback.service}/${fallback.model}`)) !== undefined;
    } catch {
      return false;
    }
  };
  const first = { ...prepared, target: { ...prepared.target, fallbacks: prepared.target.fallbacks.filter(answers) } };
  await relay(req, res, deps, first, (call) => {
    const run = runFor(call.target) ?? (() => Promise.reject(notOffered(call.target, route.api)));
    return run(call.call);
  }, route.framing);
}
