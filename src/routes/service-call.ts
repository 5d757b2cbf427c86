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
