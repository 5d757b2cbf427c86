import { Router, type RequestHandler } from 'express';
import { z } from 'zod/v4';
import { ApiError, errorEnvelope, invalidRequest } from '../errors.js';
import { MAX_SERVICE_ID_LENGTH } from '../token/claims.js';
import { zodIssueToApiError } from '../token/mint-request.js';
import { chainDepth, MAX_CHAIN_HOPS, resolveChain } from '../services/chain.js';
import type { ProcessStep } from '../services/filters.js';
import type { NetworkTargets } from '../services/network-targets.js';
import type { ProcessRequest, ResponseEvent, ResponseFinal, ServiceCall, ServiceProps } from '../services/types.js';
import { jsonBody, MB } from './body.js';
import { prepareServiceCall, withFallbacks, type PreparedCall, type ServiceCallDeps } from './service-call.js';
import { SseWriter } from './sse.js';

const MAX_INPUTS = 256;
const MAX_TEXT_LENGTH = 512 * 1024;

const serviceIdSchema = z.string({ error: 'must be a string' }).min(1, { error: 'must not be empty' }).max(MAX_SERVICE_ID_LENGTH);

/** A chain of services, AIsBreaker's `service` (see resolveChain); how deep it may nest is checked before. */
const servicePropsSchema: z.ZodType<ServiceProps> = z.object(
  {
    serviceId: serviceIdSchema,
    url: z.string({ error: 'must be a string' }).max(2048).optional(),
    get forward2ServiceProps(): z.ZodOptional<z.ZodType<ServiceProps>> {
      return servicePropsSchema.optional();
    },
  },
  { error: 'must be an object with a serviceId' },
);

/** Unknown fields are dropped (AIsBreaker clients send more than we use), known ones are checked. */
export const processBodySchema = z.object({
  service: servicePropsSchema,
  request: z.object(
    {
      inputs: z
        .array(
          z.object({
            text: z
              .object({
                role: z.string({ error: 'must be a string' }).max(64),
                content: z.string({ error: 'must be a string' }).max(MAX_TEXT_LENGTH),
              })
              .optional(),
          }),
          { error: 'must be an array' },
        )
        .max(MAX_INPUTS, { error: `at most ${MAX_INPUTS} inputs` }),
      conversationState: z.string({ error: 'must be a string' }).optional(),
      stream: z.boolean({ error: 'must be a boolean' }).optional(),
    },
    { error: 'must be an object with inputs' },
  ),
});

export interface ProcessDeps extends ServiceCallDeps {
  /** the gateways a request may name as aisbreaker:network's url (AISBREAKER_NETWORK_URLS) */
  networkTargets: NetworkTargets;
}

/**
 * `POST /api/v1/process` (also under AIsBreaker's `/api/v1alpha1`): the AIsBreaker API. JSON
 * `ResponseFinal`, or with `stream: true` an event stream of `progress` events, then one `final`
 * (or `error`) event. Errors that happen before the first event are plain JSON errors with their
 * status; later ones an `error` event carrying the same envelope, statusCode included.
 */
export function processRoutes(guard: RequestHandler[], deps: ProcessDeps): Router {
  const router = Router();
  const handle: RequestHandler = async (req, res) => {
    if (chainDepth((req.body as { service?: unknown } | undefined)?.service) > MAX_CHAIN_HOPS) {
      throw invalidRequest('service', `a chain of at most ${MAX_CHAIN_HOPS} services (forward2ServiceProps nested deeper)`);
    }
    const parsed = processBodySchema.safeParse(req.body);
    if (!parsed.success) throw zodIssueToApiError(parsed.error);
    const { service: serviceProps, request } = parsed.data;
    const chain = resolveChain(serviceProps, deps.registry(), deps.networkTargets, req.log);
    const first = await prepareServiceCall(deps, req, res, chain.target, chain);
    const aisRequest: ProcessRequest = request;
    // the answer tells the upstream's token count, as the quotas learn it
    let totalTokens: number | undefined;
    const withTokens = (final: ResponseFinal): ResponseFinal => (totalTokens === undefined ? final : { ...final, usage: { ...final.usage, totalTokens } });
    /** The request through the filters (the first named outermost) to the call's service: the requested one or a fallback. */
    const run = (prepared: PreparedCall, onProgress?: ServiceCall['onProgress']): Promise<ResponseFinal> => {
      const service = chain.filters.reduceRight<ProcessStep>((next, filter) => filter(next), (r, call) => prepared.target.service.process(r, call));
      const call: ServiceCall = {
        ...prepared.call,
        ...(onProgress ? { onProgress } : {}),
        onUsage: (usage) => {
          totalTokens = usage.total_tokens;
          prepared.call.onUsage?.(usage);
        },
      };
      return service(aisRequest, call);
    };

    if (!request.stream) {
      let answered;
      try {
        answered = await withFallbacks(deps, req, res, first, (p) => run(p));
      } catch (err) {
        // the caller is gone: nobody to answer, and not a failure of ours
        if (first.call.signal.aborted) return;
        throw err;
      }
      answered.prepared.finish();
      res.json(withTokens(answered.result));
      return;
    }
    // the stream opens with the first event: a failure before it keeps its own status
    let sse: SseWriter | undefined;
    try {
      const answered = await withFallbacks(
        deps,
        req,
        res,
        first,
        (p) => run(p, (event: ResponseEvent) => (sse ??= new SseWriter(res)).sendInTurn('progress', event, p.call.signal)),
        () => sse === undefined,
      );
      answered.prepared.finish();
      (sse ??= new SseWriter(res)).send('final', withTokens(answered.result));
    } catch (err) {
      // withFallbacks has finished every call that failed
      if (first.call.signal.aborted) return;
      if (sse === undefined) throw err;
      sse.send('error', errorEnvelope(err instanceof ApiError ? err : new ApiError(500, 'INTERNAL_ERROR', 'the service failed')));
      if (!(err instanceof ApiError)) req.log?.error({ err }, 'service failed while streaming');
    } finally {
      sse?.end();
    }
  };
  // one route per path: metrics label each by its own pattern
  for (const path of ['/api/v1/process', '/api/v1alpha1/process']) {
    // AIsBreaker accepts text/plain too: some browser environments cannot set the content type
    router.post(path, ...guard, ...jsonBody(MB, ['application/json', 'text/plain']), handle);
  }
  return router;
}
