import type { Request, Response } from 'express';
import { callerOwnSecret } from '../auth/caller-secret.js';
import type { Principal } from '../auth/principal.js';
import type { RequestedModel } from '../keys/directory.js';
import { secretForService } from '../auth/service-secret.js';
import { ApiError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import type { ServiceRegistry, ServiceTarget } from '../services/registry.js';
import type { ServiceCall, ServiceProps } from '../services/types.js';
import { UpstreamError } from '../services/upstream.js';

export interface ServiceCallDeps {
  /** the current registry: it changes when the config file does */
  registry: () => ServiceRegistry;
  /** operator keys: is the model allowed, and within the key's limits for it */
  admitModel: (req: Request, res: Response, model: RequestedModel) => Promise<void>;
  metrics: Metrics;
}

/** A call that passed every check, and its bookkeeping once it is over. */
export interface PreparedCall {
  target: ServiceTarget;
  call: ServiceCall;
  /** records the call's duration, or its failure, in the metrics */
  finish(err?: unknown): void;
}

/** aisbreaker:network's part of a chain: what the remote gets, and whether the request named the remote itself. */
export interface ChainHop {
  forward?: ServiceProps;
  callerNamedUrl?: boolean;
}

/**
 * What both APIs (/api/v1/process, /v1/chat/completions) do before calling a service: the
 * operator key's model limits, the secret the caller's credential carries for that service,
 * an abort when the caller goes away, and the LLM-token usage reported back to quotas and metrics.
 */
export async function prepareServiceCall(deps: ServiceCallDeps, req: Request, res: Response, target: ServiceTarget, hop: ChainHop = {}): Promise<PreparedCall> {
  const principal = req.principal;
  if (!principal) throw new ApiError(401, 'MISSING_API_KEY', 'no credential');
  // refused before an operator key's limits count it; a gateway the caller named may go without a
  // credential (open access without a bearer): it decides
  const callerSecret = hop.callerNamedUrl ? callerOwnSecret(principal, target.serviceId) : undefined;
  await deps.admitModel(req, res, target);
  const secret = hop.callerNamedUrl ? callerSecret : secretForService(principal, target.serviceId, target.operatorSecret);
  if (target.service.needsSecret && secret === undefined && !hop.callerNamedUrl) {
    throw new ApiError(401, 'MISSING_API_KEY', missingSecretMessage(principal.kind, target), { serviceId: target.serviceId });
  }
  const project = principal.kind === 'key' ? principal.key.project : '';
  const labels = { service: target.prefix };
  res.locals.service = target.prefix;
  res.setHeader(SERVED_BY_HEADER, target.prefix);
  const started = process.hrtime.bigint();
  const requestStartedAt: unknown = res.locals.requestStartedAt;
  if (typeof requestStartedAt === 'bigint') deps.metrics.observeGatewayOverhead(String(req.route?.path ?? ''), Number(started - requestStartedAt) / 1e9);
  const span = req.span;
  span?.calling({ service: target.prefix, requestModel: target.engine });
  return {
    target,
    call: {
      serviceId: target.serviceId,
      engine: target.engine,
      ...(hop.forward ? { forward: hop.forward } : {}),
      secret,
      ...(principal.kind === 'key' && !hop.callerNamedUrl ? { byOperatorKey: true } : {}),
      signal: abortOnClose(req, res),
      onUsage: (usage) => {
        req.settleLlmTokens?.(usage.total_tokens);
        deps.metrics.countLlmTokens(project, target.prefix, usage.total_tokens);
        span?.usage(usage);
      },
      ...(span ? { onResponseModel: (model: string) => span.responseModel(model), traceHeaders: span.headers() } : {}),
    },
    finish: (err) => {
      if (err === undefined) deps.metrics.observeUpstream(target.prefix, Number(process.hrtime.bigint() - started) / 1e9);
      else if (err instanceof UpstreamError) deps.metrics.upstreamErrors.inc({ ...labels, kind: err.kind });
      else if (!res.destroyed) deps.metrics.upstreamErrors.inc({ ...labels, kind: err instanceof ApiError ? err.code : 'internal' });
    },
  };
}

function missingSecretMessage(kind: Principal['kind'], target: ServiceTarget): string {
  switch (kind) {
    case 'token':
      return `this token carries no secret for service "${target.serviceId}"; mint one with a serviceSecrets entry for it`;
    case 'key':
      return `the server has no key of its own for service "${target.prefix}"`;
    case 'open':
      return `service "${target.serviceId}" needs a key: send yours as "Authorization: Bearer <key>", or use an aisbreaker token that carries one`;
  }
}

/** Names the service that answered: the requested one, or the fallback that stood in for it. */
export const SERVED_BY_HEADER = 'Aisbreaker-Served-By';

/**
 * Calls `invoke` with `prepared`; when every upstream of its service failed before answering
 * (502, 503, 504, or the upstreams' own 429), the same call goes to the service's fallbacks in
 * order. A fallback the caller may not use is skipped: no secret of its token for it, no operator
 * key of the server, or its quotas for that model refuse; an open-access caller gets none (its
 * bearer is its key for the service it named). `untouched` says whether the caller has
 * seen nothing of the failed attempt yet (a stream begun is never answered twice). Returns the
 * answer and the call that gave it (to be finished by the caller); when no fallback answered, the
 * first failure is thrown. Every failed call has been finished then.
 */
export async function withFallbacks<T>(
  deps: ServiceCallDeps,
  req: Request,
  res: Response,
  prepared: PreparedCall,
  invoke: (prepared: PreparedCall) => Promise<T>,
  untouched: () => boolean = () => true,
): Promise<{ result: T; prepared: PreparedCall }> {
  try {
    return { result: await invoke(prepared), prepared };
  } catch (err) {
    prepared.finish(err);
    // an open-access caller's own key is for the service it asked for, and nowhere else
    if (prepared.target.fallbacks.length === 0 || req.principal?.kind === 'open' || !failedBeforeAnswering(err, prepared, untouched)) throw err;
    for (const fallback of prepared.target.fallbacks) {
      let next: PreparedCall;
      try {
        const target = deps.registry().resolve(fallback.model === undefined ? fallback.service : `${fallback.service}/${fallback.model}`);
        next = await prepareServiceCall(deps, req, res, target);
      } catch (refused) {
        if (refused instanceof ApiError) continue; // not a service this caller may use
        throw refused;
      }
      try {
        return { result: await invoke(next), prepared: next };
      } catch (again) {
        next.finish(again);
        if (!failedBeforeAnswering(again, next, untouched)) throw again;
      }
    }
    res.setHeader(SERVED_BY_HEADER, prepared.target.prefix);
    res.locals.service = prepared.target.prefix;
    throw err;
  }
}

/** The upstreams of the call's service all failed, before anything reached the caller. */
function failedBeforeAnswering(err: unknown, prepared: PreparedCall, untouched: () => boolean): boolean {
  if (prepared.call.signal.aborted || !untouched() || !(err instanceof UpstreamError)) return false;
  return (err.status >= 502 && err.status <= 504) || (err.status === 429 && err.details?.scope === 'upstream');
}

/** Aborted when the client goes away before the response is complete: the upstream call stops with it. */
function abortOnClose(req: Request, res: Response): AbortSignal {
  const controller = new AbortController();
  const abort = (): void => controller.abort(new Error('client closed the connection'));
  // the client may have left while the request was still being authenticated and checked
  // (the request's socket: a pipelined response has none of its own until those before it are done)
  if (res.destroyed || req.socket.destroyed) abort();
  else
    res.once('close', () => {
      if (!res.writableFinished) abort();
    });
  return controller.signal;
}
