import type { Logger } from 'pino';
import type { Output, ProcessRequest, ResponseEvent, ResponseFinal, ServiceCall } from './types.js';

/**
 * AIsBreaker's built-in filters: services that take a request, pass it on to the next hop of the
 * chain (`forward2ServiceProps`) and may change what goes in or comes back. They run inside the
 * gateway, in the order the request names them.
 */

/** One step of the chain: what a service's `process` is. */
export type ProcessStep = (request: ProcessRequest, call: ServiceCall) => Promise<ResponseFinal>;
export type Filter = (next: ProcessStep) => ProcessStep;

export const MIRROR_FILTER = 'aisbreaker:mirror';

/** aisbreaker:mirror: every text output reversed, streamed ones too; usage names the service mirrored. */
const mirror: Filter = (next) => async (request, call) => {
  const onProgress = call.onProgress;
  const mirroredCall: ServiceCall = onProgress ? { ...call, onProgress: (event: ResponseEvent) => onProgress({ ...event, outputs: mirrorOutputs(event.outputs) }) } : call;
  const final = await next(request, mirroredCall);
  const mirroredId = final.usage?.engine?.serviceId;
  return {
    ...final,
    outputs: mirrorOutputs(final.outputs),
    usage: { ...final.usage, engine: { serviceId: mirroredId ? `${MIRROR_FILTER}/service/${mirroredId}` : MIRROR_FILTER } },
  };
};

/** Text outputs only, as AIsBreaker's MirrorFilter: other kinds of output are dropped. */
function mirrorOutputs(outputs: Output[] | undefined): Output[] {
  if (!Array.isArray(outputs)) return [];
  const mirrored: Output[] = [];
  for (const output of outputs) {
    const text = output?.text;
    if (text === undefined || typeof text.content !== 'string') continue;
    mirrored.push({ text: { ...text, content: [...text.content].reverse().join('') } });
  }
  return mirrored;
}

/** aisbreaker:nop: passes everything through unchanged. */
const nop: Filter = (next) => next;

/**
 * aisbreaker:logging: the shape of the request and its answer at debug level (how many inputs,
 * their roles and lengths, streaming or not), never their text and never a secret.
 */
function logging(log: Logger | undefined): Filter {
  return (next) => async (request, call) => {
    const started = Date.now();
    log?.debug(
      {
        filter: 'aisbreaker:logging',
        service: call.serviceId,
        inputs: request.inputs.map((input) => ({ role: input.text?.role, chars: input.text?.content.length ?? 0 })),
        conversationState: request.conversationState !== undefined,
        stream: call.onProgress !== undefined,
      },
      'request passes aisbreaker:logging',
    );
    const final = await next(request, call);
    log?.debug({ filter: 'aisbreaker:logging', service: call.serviceId, outputs: Array.isArray(final.outputs) ? final.outputs.length : 0, ms: Date.now() - started }, 'answer passes aisbreaker:logging');
    return final;
  };
}

const FILTERS: Record<string, (log: Logger | undefined) => Filter> = {
  [MIRROR_FILTER]: () => mirror,
  'aisbreaker:nop': () => nop,
  'aisbreaker:logging': logging,
};

/** The filter a serviceId names, if it names one; the logging filter writes to the request's log. */
export function filterFor(serviceId: string, log: Logger | undefined): Filter | undefined {
  return Object.hasOwn(FILTERS, serviceId) ? FILTERS[serviceId]?.(log) : undefined;
}

export const FILTER_IDS = Object.keys(FILTERS);
