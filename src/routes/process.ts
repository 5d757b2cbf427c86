import { Router, type RequestHandler } from 'express';
import { z } from 'zod/v4';
import { ApiError, errorEnvelope, invalidRequest } from '../errors.js';
import { MAX_SERVICE_ID_LENGTH } from '../token/claims.js';
import { zodIssueToApiError } from '../token/mint-request.js';
import type { ProcessRequest, ResponseEvent } from '../services/types.js';
import { jsonBody, MB } from './body.js';
import { prepareServiceCall, type ServiceCallDeps } from './service-call.js';
import { SseWriter } from './sse.js';

const MAX_INPUTS = 256;
const MAX_TEXT_LENGTH = 512 * 1024;

const serviceIdSchema = z.string({ error: 'must be a string' }).min(1, { error: 'must not be empty' }).max(MAX_SERVICE_ID_LENGTH);

/** Unknown fields are dropped (AIsBreaker clients send more than we use), known ones are checked. */
export const processBodySchema = z.object({
  service: z.object(
    {
      serviceId: serviceIdSchema,
      url: z.unknown().optional(),
      forwardToServiceProps: z.object({ serviceId: serviceIdSchema, url: z.unknown().optional() }, { error: 'must be an object with a serviceId' }).optional(),
    },
    { error: 'must be an object with a serviceId' },
  ),
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

/**
 * `POST /api/v1/process`: the AIsBreaker API. JSON `ResponseFinal`, or with `stream: true` an
 * event stream of `progress` events, then one `final` (or `error`) event. Errors that happen
 * before the first event are plain JSON errors with their status.
 */
export function processRoutes(guard: RequestHandler[], deps: ServiceCallDeps): Router {
  const router = Router();
  router.post(
    '/api/v1/process',
    ...guard,
    // AIsBreaker accepts text/plain too: some browser environments cannot set the content type
    ...jsonBody(MB, ['application/json', 'text/plain']),
    async (req, res) => {
      const parsed = processBodySchema.safeParse(req.body);
      if (!parsed.success) throw zodIssueToApiError(parsed.error);
      const { service: serviceProps, request } = parsed.data;
      if (serviceProps.url !== undefined || serviceProps.forwardToServiceProps?.url !== undefined) {
        // a token's secret must never travel to a host the caller chose
        const field = serviceProps.url !== undefined ? 'service.url' : 'service.forwardToServiceProps.url';
        throw invalidRequest(field, 'not accepted: upstream URLs come from the server configuration only');
      }
      // AIsBreaker's way to name the service behind aisbreaker:network
      const forwardTo = serviceProps.forwardToServiceProps?.serviceId;
      const serviceId = forwardTo === undefined ? serviceProps.serviceId : `${serviceProps.serviceId}/${forwardTo}`;
      const prepared = await prepareServiceCall(deps, req, res, deps.registry().resolve(serviceId));
      const { service } = prepared.target;
      const aisRequest: ProcessRequest = request;

      if (!request.stream) {
        let final;
        try {
          final = await service.process(aisRequest, prepared.call);
        } catch (err) {
          prepared.finish(err);
          // the caller is gone: nobody to answer, and not a failure of ours
          if (prepared.call.signal.aborted) return;
          throw err;
        }
        prepared.finish();
        res.json(final);
        return;
      }
      // the stream opens with the first event: a failure before it keeps its own status
      let sse: SseWriter | undefined;
      const onProgress = (event: ResponseEvent): Promise<void> => (sse ??= new SseWriter(res)).sendInTurn('progress', event, prepared.call.signal);
      try {
        const final = await service.process(aisRequest, { ...prepared.call, onProgress });
        prepared.finish();
        (sse ??= new SseWriter(res)).send('final', final);
      } catch (err) {
        prepared.finish(err);
        if (prepared.call.signal.aborted) return;
        if (sse === undefined) throw err;
        sse.send('error', errorEnvelope(err instanceof ApiError ? err : new ApiError(500, 'INTERNAL_ERROR', 'the service failed')));
        if (!(err instanceof ApiError)) req.log?.error({ err }, 'service failed while streaming');
      } finally {
        sse?.end();
      }
    },
  );
  return router;
}
