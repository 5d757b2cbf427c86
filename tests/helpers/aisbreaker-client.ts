import { STATUS_CODES } from 'node:http';
import { createParser } from 'eventsource-parser';

/**
 * The AIsBreaker JavaScript client (aisbreaker-api-js: `AIsNetworkClientService` under
 * `AIsBreaker.getAIsService(url, serviceProps, auth)`, as its test-utils `processService` drives it),
 * reproduced for the tests: the package is not on the npm registry. Same body, same headers, same
 * SSE handling of `progress`/`final`/`error`, and the same turning of answers into `AIsError`s
 * (AIsError.fromHTTPError / fromAIsErrorData, BaseAIsService.process), so a test asserts what a
 * user of that client sees.
 */

export interface ServiceProps {
  serviceId: string;
  url?: string;
  forward2ServiceProps?: ServiceProps;
}

export interface ResponseEvent {
  outputs: { text?: { content?: string } }[];
}

export interface ResponseFinal {
  outputs: { text?: { index: number; role: string; content: string } }[];
  conversationState?: string;
  usage: { engine: { serviceId: string }; totalMilliseconds: number; totalTokens?: number };
}

/** AIsBreaker's AIsError: `message`, `statusCode`, `statusText`. */
export class AIsError extends Error {
  readonly statusText: string | undefined;

  constructor(
    message: string,
    readonly statusCode: number | undefined,
    statusText?: string,
  ) {
    super(AIsError.messageOf(message, statusCode, statusText ?? (statusCode ? STATUS_CODES[statusCode] : undefined)));
    this.statusText = statusText ?? (statusCode ? STATUS_CODES[statusCode] : undefined);
  }

  /** as the original: without a status, the message says "Failed with an unknown error" */
  private static messageOf(message: string, statusCode: number | undefined, statusText: string | undefined): string {
    if (message && statusCode) return message;
    const status = `${statusCode ?? ''} ${statusText ?? ''}`.trim();
    return `Failed with ${status ? `status code ${status}` : 'an unknown error'}: ${message}`;
  }

  /** AIsError.fromAIsErrorData: takes whatever the data says, statusCode possibly undefined */
  static fromData(data: { message?: unknown; statusCode?: unknown; statusText?: unknown }): AIsError {
    return new AIsError(String(data.message), typeof data.statusCode === 'number' ? data.statusCode : undefined, typeof data.statusText === 'string' ? data.statusText : undefined);
  }
}

function isAIsErrorData(value: unknown): value is { message: string; statusCode: number; statusText?: string } {
  const v = value as { message?: unknown; statusCode?: unknown } | null;
  return typeof v?.message === 'string' && typeof v.statusCode === 'number';
}

/** The test-utils' processService: one prompt, optionally streamed; resolves [final, its text, the streamed text]. */
export async function processService(
  aisbreakerServerUrl: string,
  serviceProps: ServiceProps,
  auth: { secret: string },
  prompt: string,
  doStream: boolean,
): Promise<[ResponseFinal, string | undefined, string | undefined]> {
  let streamedProgressText: string | undefined;
  const onProgress = (event: ResponseEvent): void => {
    if (event?.outputs?.length > 0) streamedProgressText = (streamedProgressText ?? '') + (event.outputs[0]?.text?.content ?? '');
  };
  const request = { inputs: [{ text: { role: 'user', content: prompt } }], ...(doStream ? { stream: true } : {}) };
  const context = `AIsNetworkClientService(aisbreaker:network->${aisbreakerServerUrl}->${serviceProps.serviceId}).process()`;
  const final = await networkProcess(`${aisbreakerServerUrl}/api/v1/process`, { service: serviceProps, request }, auth, doStream ? onProgress : undefined, context);
  return [final, final?.outputs?.[0]?.text?.content, streamedProgressText];
}

async function networkProcess(url: string, body: unknown, auth: { secret: string }, onProgress: ((e: ResponseEvent) => void) | undefined, context: string): Promise<ResponseFinal> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        Authorization: `Bearer ${auth.secret || 'NoAuthProvided-in-AIsNetworkClientService'}`,
        // ky's .json() / .text()
        Accept: onProgress ? 'text/*' : 'application/json',
      },
      body: JSON.stringify(body),
    });
  } catch (err) {
    // BaseAIsService: fetch's TypeError -> 503
    throw new AIsError(`${context}: Fetch failed2(Base): ${String(err)}: ${String((err as Error).cause)}`, 503);
  }
  if (!response.ok) throw await fromHttpError(response, context);
  if (!onProgress) return (await response.json()) as ResponseFinal;

  // AIsNetworkClientService.processStreamingRequest with kyOnDownloadProgress4onMessage
  let final: ResponseFinal | undefined;
  let errorFinal: AIsError | undefined;
  const parser = createParser({
    onEvent: (message) => {
      if (!message.data || message.event === 'ping') return;
      if (message.event === 'error') {
        const data = JSON.parse(message.data) as { error?: unknown };
        errorFinal = AIsError.fromData((data.error ?? data) as { message?: unknown; statusCode?: unknown });
        return;
      }
      if (message.data === '[DONE]') return;
      if (message.event === 'final') final = JSON.parse(message.data) as ResponseFinal;
      else onProgress(JSON.parse(message.data) as ResponseEvent);
    },
  });
  const decoder = new TextDecoder();
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) parser.feed(decoder.decode(chunk, { stream: true }));
  if (errorFinal) throw new AIsError(`${context}: ${errorFinal.message}`, errorFinal.statusCode, errorFinal.statusText);
  if (!final) throw new AIsError(`${context} - No final response`, 444);
  return final;
}

/** AIsError.fromHTTPError after ky's HTTPError and kyHooksBeforeErrorToReduceLogging. */
async function fromHttpError(response: Response, context: string): Promise<AIsError> {
  const httpErrorMessage = `Request failed with status code ${response.status} ${response.statusText}: POST ${response.url}`;
  let body: { error?: unknown } | undefined;
  try {
    body = (await response.json()) as { error?: unknown };
  } catch {
    body = undefined;
  }
  const error = body?.error;
  if (isAIsErrorData(error)) return new AIsError(`${context}: ${error.message}`, error.statusCode, error.statusText);
  if (error) {
    const message = (error as { message?: string }).message ?? String(error);
    return new AIsError(`${context}: ${httpErrorMessage}: ${message}`, response.status, response.statusText);
  }
  return new AIsError(`${context}: ${httpErrorMessage}`, response.status, response.statusText);
}
