import type { RequestHandler } from 'express';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Prometheus metrics. Labels are bounded sets chosen by the server (route patterns, status codes,
 * service ids from the registry, project names from the config): never a token, key, secret or
 * anything else a caller controls freely.
 */
export class Metrics {
  readonly registry = new Registry();

  readonly requests = new Counter({
    name: 'aisbgw_http_requests_total',
    help: 'HTTP requests by route, method, status and service (the registered serviceId, "" when none)',
    labelNames: ['route', 'method', 'status', 'service'] as const,
    registers: [this.registry],
  });

  readonly requestDuration = new Histogram({
    name: 'aisbgw_http_request_duration_seconds',
    help: 'Time from request to response end, by route (includes the upstream)',
    labelNames: ['route'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });

  readonly gatewayOverhead = new Histogram({
    name: 'aisbgw_gateway_overhead_seconds',
    help: 'Time spent in the gateway before the service was called (auth, quotas, parsing)',
    labelNames: ['route'] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1],
    registers: [this.registry],
  });

  readonly upstreamDuration = new Histogram({
    name: 'aisbgw_upstream_duration_seconds',
    help: 'Time from calling a service to its complete answer, by service',
    labelNames: ['service'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });

  readonly upstreamErrors = new Counter({
    name: 'aisbgw_upstream_errors_total',
    help: 'Failed service calls by service and kind (http status, timeout, unavailable, ...)',
    labelNames: ['service', 'kind'] as const,
    registers: [this.registry],
  });

  readonly upstreamCalls = new Counter({
    name: 'aisbgw_upstream_calls_total',
    help: 'Calls to each upstream of a service with several (attempts, retries included)',
    labelNames: ['service', 'upstream'] as const,
    registers: [this.registry],
  });

  readonly upstreamFailures = new Counter({
    name: 'aisbgw_upstream_failures_total',
    help: 'Failed calls to each upstream of a service with several, by kind',
    labelNames: ['service', 'upstream', 'kind'] as const,
    registers: [this.registry],
  });

  readonly upstreamRetries = new Counter({
    name: 'aisbgw_upstream_retries_total',
    help: 'Calls tried again on another (or the same) upstream after a failure that produced no answer',
    labelNames: ['service'] as const,
    registers: [this.registry],
  });

  readonly upstreamCircuitOpen = new Gauge({
    name: 'aisbgw_upstream_circuit_open',
    help: '1 while an upstream is out of rotation after repeated failures (per instance)',
    labelNames: ['service', 'upstream'] as const,
    registers: [this.registry],
  });

  readonly quotaDecisions = new Counter({
    name: 'aisbgw_quota_decisions_total',
    help: 'Quota decisions by outcome, and for denials by scope and window',
    labelNames: ['outcome', 'scope', 'window'] as const,
    registers: [this.registry],
  });

  readonly quotaStoreDegraded = new Gauge({
    name: 'aisbgw_quota_store_degraded',
    help: '1 while the shared quota store is unavailable and the failure policy is in force',
    registers: [this.registry],
  });

  readonly quotaStoreErrors = new Counter({
    name: 'aisbgw_quota_store_errors_total',
    help: 'Failed calls to the shared quota store (Redis)',
    registers: [this.registry],
  });

  readonly tokensMinted = new Counter({
    name: 'aisbgw_tokens_minted_total',
    help: 'Tokens minted, new or derived from a parent token',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  readonly tokensRevoked = new Counter({
    name: 'aisbgw_tokens_revoked_total',
    help: 'Tokens revoked, by who revoked them',
    labelNames: ['by'] as const,
    registers: [this.registry],
  });

  readonly llmTokens = new Counter({
    name: 'aisbgw_llm_tokens_total',
    help: 'LLM tokens used, from the upstream usage, by project (operator keys) and service',
    labelNames: ['project', 'service'] as const,
    registers: [this.registry],
  });

  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'aisbgw_' });
  }

  /** Counts and times every request under its route pattern (never its raw path). */
  middleware(): RequestHandler {
    return (req, res, next) => {
      const started = process.hrtime.bigint();
      res.locals.requestStartedAt = started;
      res.once('close', () => {
        const route = req.route?.path ? String(req.route.path) : 'unmatched';
        const service = typeof res.locals.service === 'string' ? res.locals.service : '';
        this.requestCount(route, req.method, String(res.statusCode), service).inc();
        this.requestTime(route).observe(Number(process.hrtime.bigint() - started) / 1e9);
      });
      next();
    };
  }

  // the per-request series, bound to their label values once (see bound())
  private readonly requestCount = bound((route, method, status, service) => this.requests.labels(route, method, status, service));
  private readonly requestTime = bound((route) => this.requestDuration.labels(route));
  private readonly decisions = bound((outcome, scope, window) => this.quotaDecisions.labels(outcome, scope, window));
  private readonly overhead = bound((route) => this.gatewayOverhead.labels(route));
  private readonly upstreamTime = bound((service) => this.upstreamDuration.labels(service));
  private readonly llmTokensOf = bound((project, service) => this.llmTokens.labels(project, service));

  countQuotaDecision(outcome: 'admitted' | 'denied' | 'revoked', scope = '', window = ''): void {
    this.decisions(outcome, scope, window).inc();
  }

  observeGatewayOverhead(route: string, seconds: number): void {
    this.overhead(route).observe(seconds);
  }

  observeUpstream(service: string, seconds: number): void {
    this.upstreamTime(service).observe(seconds);
  }

  countLlmTokens(project: string, service: string, tokens: number): void {
    this.llmTokensOf(project, service).inc(tokens);
  }

  handler(): RequestHandler {
    return async (_req, res) => {
      res.set('Content-Type', this.registry.contentType);
      res.send(await this.registry.metrics());
    };
  }
}

/**
 * A metric's children by label values, each bound once: prom-client would otherwise hash the label
 * object on every call of the request path. Label values are bounded sets chosen by the server
 * (route patterns, methods, statuses, registered services, configured projects), so the map stays small.
 */
function bound<Child>(bind: (...values: string[]) => Child): (...values: string[]) => Child {
  const children = new Map<string, Child>();
  return (...values) => {
    const key = values.join('\u0000');
    let child = children.get(key);
    if (child === undefined) {
      child = bind(...values);
      children.set(key, child);
    }
    return child;
  };
}
