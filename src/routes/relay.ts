import type { Request, Response } from 'express';
import { ApiError } from '../errors.js';
import type { ApiResult, StreamEvent } from '../services/types.js';
import { withFallbacks, type PreparedCall, type ServiceCallDeps } from './service-call.js';
import { SseWriter } from './sse.js';

/** How an API frames the end of its stream and a failure in the middle of one. */
export interface StreamFraming {
  /** the `data:` that closes the stream (OpenAI's `[DONE]`); none for APIs whose last event says so */
  done?: string;
  /** the event reporting a failure after the first event (the status is sent by then) */
  errorEvent(err: ApiError): StreamEvent;
}

/**
 * Calls the service (and its fallbacks, see withFallbacks) and sends the answer: its JSON as is,
 * or its stream event by event with back-pressure. A failure before the first event keeps its
 * status (the route's error handler answers it); after it, the stream ends with the API's error
 * event. The metrics learn how the call ended.
 */
export async function relay(req: Request, res: Response, deps: ServiceCallDeps, first: PreparedCall, invoke: (prepared: PreparedCall) => Promise<ApiResult>, framing: StreamFraming): Promise<void> {
  let sse: SseWriter | undefined;
  // the call that answered, once one did: withFallbacks finishes those that failed before
  let prepared: PreparedCall | undefined;
  try {
    const answered = await withFallbacks(deps, req, res, first, invoke);
    prepared = answered.prepared;
    const result = answered.result;
    if (result.kind === 'json') {
      res.status(200).set('Content-Type', 'application/json; charset=utf-8').end(result.body);
    } else {
      for await (const event of result.events) {
        sse ??= new SseWriter(res);
        await sse.sendInTurn(event.event, event.data, prepared.call.signal);
      }
      sse ??= new SseWriter(res);
      if (framing.done !== undefined) sse.send(undefined, framing.done);
    }
    prepared.finish();
  } catch (err) {
    prepared?.finish(err);
    if (first.call.signal.aborted) return;
    if (sse === undefined) throw err;
    const event = framing.errorEvent(err instanceof ApiError ? err : new ApiError(502, 'UPSTREAM_ERROR', 'the service failed'));
    sse.send(event.event, event.data);
    if (!(err instanceof ApiError)) req.log?.error({ err }, 'service failed while streaming');
  } finally {
    sse?.end();
  }
}
