import type { LlmUsage } from '../services/types.js';
import type { QuotaDecision } from '../quota/store.js';

/**
 * The trace span of one served request (see otel.ts), as the request path sees it: set only while
 * tracing is on, so with it off each hook below is one property check. Its attributes are names
 * and numbers only: never a secret, a token or message content.
 */
export interface RequestSpan {
  /** the quota decision, as an event at the time it was taken */
  quotaDecision(decision: QuotaDecision): void;
  /** the call about to go to a service (its registered serviceId) and the model requested of it */
  calling(call: { service: string; requestModel: string }): void;
  /** the usage the upstream reported */
  usage(usage: LlmUsage): void;
  /** the model the upstream says answered */
  responseModel(model: string): void;
  /** W3C trace context headers (traceparent, tracestate) for the upstream request: its parent is this span */
  headers(): Record<string, string>;
}

declare global {
  // Express's own extension point for request properties
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      span?: RequestSpan;
    }
  }
}
