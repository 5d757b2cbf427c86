import { ROOT_CONTEXT, SpanKind, SpanStatusCode, defaultTextMapGetter, defaultTextMapSetter, trace, type Span, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import type { RequestHandler } from 'express';
import { tightestOf, type QuotaDecision } from '../quota/store.js';
import type { LlmUsage } from '../services/types.js';
import { PRODUCT_NAME, PRODUCT_VERSION } from '../version.js';
import type { RequestSpan } from './span.js';

/**
 * OpenTelemetry tracing, on only when an OTLP endpoint is configured (OTEL_EXPORTER_OTLP_ENDPOINT
 * or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; the exporter, the sampler and the batch processor read
 * the other standard OTEL_* settings themselves). Each served request is one span, named and attributed
 * after the GenAI semantic conventions once it calls a model; the quota decision is an event on
 * it; the upstream request carries its W3C traceparent.
 */
export interface Tracing {
  /** where spans go, for the start banner (without credentials) */
  readonly endpoint: string;
  /** starts the request's span (its parent: the caller's traceparent, if any) and ends it with the response */
  middleware(): RequestHandler;
  /** exports what is left; at shutdown */
  shutdown(): Promise<void>;
}

type Env = Record<string, string | undefined>;

/** `endpoint`: see otlpTracesEndpoint (settings.ts), which decides whether this module is loaded at all. */
export function startTracing(env: Env, endpoint: string): Tracing {
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: env.OTEL_SERVICE_NAME?.trim() || PRODUCT_NAME, [ATTR_SERVICE_VERSION]: PRODUCT_VERSION }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  const tracer = provider.getTracer(PRODUCT_NAME, PRODUCT_VERSION);
  const propagator = new W3CTraceContextPropagator();
  return {
    endpoint: withoutCredentials(endpoint),
    middleware: () => (req, res, next) => {
      const parent = propagator.extract(ROOT_CONTEXT, req.headers, defaultTextMapGetter);
      // the route's template, not the path as sent: the middleware runs on the serving routes only
      const route = String((req.route as { path?: unknown } | undefined)?.path ?? req.path);
      const span = tracer.startSpan(`${req.method} ${route}`, { kind: SpanKind.SERVER, attributes: { 'http.request.method': req.method, 'http.route': route } }, parent);
      req.span = new OtelRequestSpan(span, propagator);
      res.once('close', () => {
        span.setAttribute('http.response.status_code', res.statusCode);
        if (res.statusCode >= 400) span.setAttribute('error.type', String(res.statusCode));
        if (res.statusCode >= 500 || !res.writableFinished) span.setStatus({ code: SpanStatusCode.ERROR });
        span.end();
      });
      next();
    },
    shutdown: () => provider.shutdown(),
  };
}

/** The services the GenAI conventions have a provider name for; others are named by their serviceId. */
const PROVIDER_NAMES: Record<string, string> = { 'chat:openai.com': 'openai', 'chat:anthropic.com': 'anthropic' };

class OtelRequestSpan implements RequestSpan {
  constructor(
    private readonly span: Span,
    private readonly propagator: W3CTraceContextPropagator,
  ) {}

  quotaDecision(decision: QuotaDecision): void {
    if (decision.outcome === 'denied') {
      const { counter, retryAfterMs } = decision;
      this.span.addEvent('aisbreaker.quota.decision', {
        'aisbreaker.quota.outcome': 'denied',
        'aisbreaker.quota.scope': counter.scope,
        'aisbreaker.quota.window': counter.window,
        'aisbreaker.quota.unit': counter.unit,
        'aisbreaker.quota.limit': counter.limit,
        'aisbreaker.quota.retry_after_ms': retryAfterMs,
      });
      return;
    }
    const tightest = decision.outcome === 'admitted' ? tightestOf(decision.statuses) : undefined;
    this.span.addEvent('aisbreaker.quota.decision', {
      'aisbreaker.quota.outcome': decision.outcome,
      ...(tightest ? { 'aisbreaker.quota.window': tightest.counter.window, 'aisbreaker.quota.limit': tightest.counter.limit, 'aisbreaker.quota.remaining': tightest.remaining } : {}),
    });
  }

  calling(call: { service: string; requestModel: string }): void {
    // GenAI span name: "{operation} {model}"
    this.span.updateName(`chat ${call.requestModel}`);
    this.span.setAttributes({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': PROVIDER_NAMES[call.service] ?? call.service,
      'gen_ai.request.model': call.requestModel,
      'aisbreaker.service.id': call.service,
    });
  }

  usage(usage: LlmUsage): void {
    if (usage.prompt_tokens !== undefined) this.span.setAttribute('gen_ai.usage.input_tokens', usage.prompt_tokens);
    if (usage.completion_tokens !== undefined) this.span.setAttribute('gen_ai.usage.output_tokens', usage.completion_tokens);
    // what the LLM-token quotas were charged: the upstream's total, or an estimate for a call cut short
    this.span.setAttribute('aisbreaker.usage.charged_tokens', usage.total_tokens);
  }

  responseModel(model: string): void {
    this.span.setAttribute('gen_ai.response.model', model);
  }

  headers(): Record<string, string> {
    const carrier: Record<string, string> = {};
    this.propagator.inject(trace.setSpan(ROOT_CONTEXT, this.span), carrier, defaultTextMapSetter);
    return carrier;
  }
}

function withoutCredentials(endpoint: string): string {
  try {
    const url = new URL(endpoint);
    url.username = '';
    url.password = '';
    return url.toString();
  } catch {
    return endpoint;
  }
}
