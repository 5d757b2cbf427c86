import { Router, type Request, type RequestHandler, type Response } from 'express';
import { z } from 'zod/v4';
import { secretForService } from '../auth/service-secret.js';
import { ApiError, errorEnvelope, invalidRequest } from '../errors.js';
import { MAX_SERVICE_ID_LENGTH } from '../token/claims.js';
import { zodIssueToApiError } from '../token/mint-request.js';
import type { ServiceRegistry } from '../services/registry.js';
import type { ProcessRequest, ResponseEvent } from '../services/types.js';
import { jsonBody } from './body.js';
import { SseWriter } from './sse.js';

const MAX_INPUTS = 256;
const MAX_TEXT_LENGTH = 512 * 1024;

/** Unknown fields are dropped (AIsBreaker clients send more than we use), known ones are checked. */
export const processBodySchema = z.object({
  service: z.object(
    {
      serviceId: z.string({ error: 'must be a string' }).min(1, { error: 'must not be empty' }).max(MAX_SERVICE_ID_LENGTH),
      url: z.unknown().optional(),
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

export interface ProcessDeps {
  /** authentication, then quota enforcement: everything a request passes before it is served */
  guard: RequestHandler[];
  registry: ServiceRegistry;
  /** operator keys: is the model allowed, and within the key's limits for it */
  admitModel: (req: Request, res: Response, model: string) => Promise<void>;
  /** the server's own secret for a service, for operator keys */
  operatorSecret: (serviceId: string) => string | undefined;
}

/**
 * `POST /api/v1/process`: the AIsBreaker API. JSON `ResponseFinal`, or with `stream: true` an
 * event stream of `progress` events, then one `final` (or `error`) event.
 */
export function processRoutes(deps: ProcessDeps): Router {
  const router = Router();
  router.post(
    '/api/v1/process',
    ...deps.guard,
    // AIsBreaker accepts text/plain too: some browser environments cannot set the content type
    ...jsonBody('1mb', ['application/json', 'text/plain']),
    async (req, res) => {
      const parsed = processBodySchema.safeParse(req.body);
      if (!parsed.success) throw zodIssueToApiError(parsed.error);
      const { service: serviceProps, request } = parsed.data;
      if (serviceProps.url !== undefined) {
        // a token's secret must never travel to a host the caller chose
        throw invalidRequest('service.url', 'not accepted: upstream URLs come from the server configuration only');
      }
      const service = deps.registry.resolve(serviceProps.serviceId);
      const principal = req.principal;
      if (!principal) throw new ApiError(401, 'MISSING_API_KEY', 'no credential');
      await deps.admitModel(req, res, serviceProps.serviceId);
      const call = {
        serviceId: serviceProps.serviceId,
        secret: secretForService(principal, serviceProps.serviceId, deps.operatorSecret),
        signal: abortOnClose(req, res),
      };
      const aisRequest: ProcessRequest = request;

      if (!request.stream) {
        res.json(await service.process(aisRequest, call));
        return;
      }
      const sse = new SseWriter(res);
      try {
        const final = await service.process(aisRequest, { ...call, onProgress: (event: ResponseEvent) => sse.send('progress', event) });
        sse.send('final', final);
      } catch (err) {
        if (call.signal.aborted) return;
        sse.send('error', errorEnvelope(err instanceof ApiError ? err : new ApiError(500, 'INTERNAL_ERROR', 'the service failed')));
        if (!(err instanceof ApiError)) req.log?.error({ err }, 'service failed while streaming');
      } finally {
        sse.end();
      }
    },
  );
  return router;
}

/** Aborted when the client goes away before the response is complete. */
function abortOnClose(_req: Request, res: Response): AbortSignal {
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort(new Error('client closed the connection'));
  });
  return controller.signal;
}
