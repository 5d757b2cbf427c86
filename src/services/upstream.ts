import { Pool, type Dispatcher } from 'undici';
import { ApiError, type ErrorCode } from '../errors.js';
import { TOKEN_PREFIX } from '../token/codec.js';

/** How long an upstream may take: to accept the connection, to send its first byte, between two chunks. */
export interface UpstreamTimeouts {
  connectMs: number;
  firstByteMs: number;
  idleMs: number;
}

export const DEFAULT_TIMEOUTS: UpstreamTimeouts = { connectMs: 10_000, firstByteMs: 120_000, idleMs: 60_000 };

export interface UpstreamOptions {
  /** the serviceId this upstream serves: the only name of it in errors and logs (its URL may hold credentials) */
  serviceId: string;
  /** from the operator's configuration only, never from a token or a request */
  baseUrl: string;
  timeouts: UpstreamTimeouts;
  maxConnections: number;
  /** how the secret travels: OpenAI's `Authorization: Bearer`, Azure's `api-key` or Anthropic's `x-api-key` header */
  auth: UpstreamAuth;
  /** another gateway: its errors keep their status, 5xx included, so they cross a chain unchanged */
  chained?: boolean;
  /** the host of a URL the caller named itself: failures name it and their cause (no news to the caller) */
  callerNamedHost?: string;
}

export type UpstreamAuth = 'bearer' | 'api-key' | 'x-api-key';

/** Upstream error bodies are read up to this size for their message; the rest is dropped. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;
/** Whole (non-streamed) answers are read up to this size. */
export const MAX_ANSWER_BYTES = 16 * 1024 * 1024;

/** A request to an upstream: a JSON body for POST, none for GET and DELETE; the API's own headers. */
export interface UpstreamRequest {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  body?: string | Buffer;
  headers?: Record<string, string>;
}

/** How a service reaches its upstream: one origin (UpstreamOrigin) or several (UpstreamGroup). */
export interface Upstream {
  readonly serviceId: string;
  /**
   * POSTs a JSON body to `<baseUrl><path>`; resolves with a 2xx response whose body is still to be
   * read. `byOperatorKey`: `secret` is the operator's key (an upstream with a key of its own uses that).
   * `traceHeaders`: W3C trace context for the request, when tracing is on.
   */
  post(path: string, body: string | Buffer, secret: string | undefined, signal: AbortSignal, byOperatorKey?: boolean, traceHeaders?: Record<string, string>): Promise<Dispatcher.ResponseData>;
  /** any request to `<baseUrl><path>`, as `post` sends its one */
  send(request: UpstreamRequest, secret: string | undefined, signal: AbortSignal, byOperatorKey?: boolean, traceHeaders?: Record<string, string>): Promise<Dispatcher.ResponseData>;
  readAll(body: Dispatcher.ResponseData['body'], signal: AbortSignal): Promise<Buffer>;
  truncated(): UpstreamError;
  tooLarge(): UpstreamError;
  parseAnswer(text: string): unknown;
  failure(err: unknown, signal: AbortSignal): unknown;
  close(): Promise<void>;
}

/**
 * One AI service's HTTP origin: a pool of kept-alive connections (undici) with the service's
 * timeouts. Every failure becomes the contract's error: upstream 4xx keep their status and
 * message, 5xx become 502, network errors 502/503, timeouts 504.
 */
export class UpstreamOrigin implements Upstream {
  private readonly pool: Pool;
  private readonly basePath: string;
  private readonly query: string;

  constructor(private readonly options: UpstreamOptions) {
    const url = new URL(options.baseUrl);
    this.basePath = url.pathname.replace(/\/+$/, '');
    this.query = url.search;
    this.pool = new Pool(url.origin, {
      connect: { timeout: options.timeouts.connectMs },
      headersTimeout: options.timeouts.firstByteMs,
      bodyTimeout: options.timeouts.idleMs,
      connections: options.maxConnections,
    });
  }

  get serviceId(): string {
    return this.options.serviceId;
  }

  /** `traceHeaders`: see Upstream.post; `byOperatorKey` does not matter here, an origin sends the secret it is given */
  post(path: string, body: string | Buffer, secret: string | undefined, signal: AbortSignal, _byOperatorKey?: boolean, traceHeaders?: Record<string, string>): Promise<Dispatcher.ResponseData> {
    return this.send({ method: 'POST', path, body }, secret, signal, _byOperatorKey, traceHeaders);
  }

  async send(request: UpstreamRequest, secret: string | undefined, signal: AbortSignal, _byOperatorKey?: boolean, traceHeaders?: Record<string, string>): Promise<Dispatcher.ResponseData> {
    const { method, path, body } = request;
    const headers: Record<string, string> = { ...traceHeaders, ...request.headers, accept: 'application/json, text/event-stream' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (secret !== undefined) {
      if (this.options.auth === 'bearer') headers.authorization = `Bearer ${secret}`;
      else headers[this.options.auth] = secret;
    }
    let response: Dispatcher.ResponseData;
    try {
      response = await this.pool.request({ method, path: this.basePath + path + this.query, headers, body: body ?? null, signal });
    } catch (err) {
      throw this.failure(err, signal);
    }
    if (response.statusCode >= 200 && response.statusCode < 300) return response;
    throw await this.rejection(response, secret);
  }

  /** Reads a whole answer body, up to MAX_ANSWER_BYTES. */
  async readAll(body: Dispatcher.ResponseData['body'], signal: AbortSignal): Promise<Buffer> {
    try {
      return await readLimited(body, MAX_ANSWER_BYTES, () => {
        throw new ApiError(502, 'UPSTREAM_ERROR', `service "${this.serviceId}" sent an answer larger than ${MAX_ANSWER_BYTES} bytes`);
      });
    } catch (err) {
      throw this.failure(err, signal);
    }
  }

  /** 502 for an event stream that ended without its closing `[DONE]`. */
  truncated(): UpstreamError {
    return new UpstreamError(502, 'UPSTREAM_ERROR', 'truncated', `service "${this.serviceId}" ended its stream before the answer was complete`);
  }

  /** 502 for a stream event, or an answer collected from a stream, beyond MAX_ANSWER_BYTES characters. */
  tooLarge(): UpstreamError {
    return new UpstreamError(502, 'UPSTREAM_ERROR', 'malformed', `service "${this.serviceId}" sent more than ${MAX_ANSWER_BYTES} characters in one stream event or answer`);
  }

  /** An answer's JSON; 502 when the upstream sent something else. */
  parseAnswer(text: string): unknown {
    return parseAnswer(this.serviceId, text);
  }

  /** The contract's error for a failed call; the caller's own abort passes through unchanged. */
  failure(err: unknown, signal: AbortSignal): unknown {
    if (err instanceof ApiError || signal.aborted) return err;
    const code = errorCode(err);
    const service = this.describe();
    switch (code) {
      case 'UND_ERR_CONNECT_TIMEOUT':
        return new UpstreamError(504, 'UPSTREAM_TIMEOUT', 'connect-timeout', `${service} did not accept a connection within ${this.options.timeouts.connectMs} ms`);
      case 'UND_ERR_HEADERS_TIMEOUT':
        return new UpstreamError(504, 'UPSTREAM_TIMEOUT', 'first-byte-timeout', `${service} did not answer within ${this.options.timeouts.firstByteMs} ms`);
      case 'UND_ERR_BODY_TIMEOUT':
        return new UpstreamError(504, 'UPSTREAM_TIMEOUT', 'idle-timeout', `${service} stopped sending for ${this.options.timeouts.idleMs} ms`);
      case 'EVENT_TOO_LARGE':
        return this.tooLarge();
      case 'ECONNREFUSED':
      case 'ENOTFOUND':
      case 'EAI_AGAIN':
      case 'EHOSTUNREACH':
      case 'ENETUNREACH':
        return new UpstreamError(503, 'UPSTREAM_UNAVAILABLE', 'unavailable', `${this.describe()} is unreachable${this.cause(err)}`);
      default:
        return new UpstreamError(502, 'UPSTREAM_ERROR', 'connection', `${this.describe()} failed: the connection broke${this.cause(err)}`);
    }
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  private describe(): string {
    const host = this.options.callerNamedHost;
    return host === undefined ? `service "${this.serviceId}"` : `service "${this.serviceId}" at ${host}`;
  }

  /** The resolver's or socket's words ("Error: getaddrinfo ENOTFOUND host"), for a host the caller named only. */
  private cause(err: unknown): string {
    if (this.options.callerNamedHost === undefined || !(err instanceof Error)) return '';
    return ` (${`${err.name}: ${err.message}`.slice(0, 300)})`;
  }

  private async rejection(response: Dispatcher.ResponseData, secret: string | undefined): Promise<ApiError> {
    const text = (await readLimited(response.body, MAX_ERROR_BODY_BYTES, () => undefined).catch(() => Buffer.alloc(0))).toString('utf8');
    const parsed = parseErrorBody(text);
    // the code is shown as well: it must not quote the secret either (an upstream may echo anything)
    const upstream = { ...parsed, code: parsed.code !== undefined && upstreamMessage(parsed.code, secret) === parsed.code ? parsed.code : undefined };
    const message = upstreamMessage(upstream.message ?? `status ${response.statusCode}`, secret);
    const details: Record<string, unknown> = { upstreamStatus: response.statusCode, ...(upstream.code ? { upstreamCode: upstream.code } : {}) };
    if (response.statusCode >= 400 && response.statusCode < 500) {
      // the caller's mistake (bad key, bad model, upstream quota): same status, the upstream's own words
      const retryAfter = response.headers['retry-after'];
      const headers = typeof retryAfter === 'string' && isRetryAfter(retryAfter) ? { 'Retry-After': retryAfter } : undefined;
      const code = response.statusCode === 429 ? 'RATE_LIMITED' : upstream.code !== undefined && isOwnErrorCode(upstream.code) ? upstream.code : 'UPSTREAM_ERROR';
      if (response.statusCode === 429) details.scope = 'upstream';
      return new UpstreamError(response.statusCode, code, `http-${response.statusCode}`, message, details, headers);
    }
    if (this.options.chained && response.statusCode >= 500 && response.statusCode < 600) {
      const code = upstream.code !== undefined && isChainedErrorCode(upstream.code) ? upstream.code : 'UPSTREAM_ERROR';
      return new UpstreamError(response.statusCode, code, `http-${response.statusCode}`, message, details);
    }
    return new UpstreamError(502, 'UPSTREAM_ERROR', `http-${response.statusCode}`, `service "${this.serviceId}" failed with status ${response.statusCode}: ${message}`, details);
  }
}

/** A Retry-After as RFC 9110 defines it (seconds, or an HTTP date): anything else is not passed on. */
function isRetryAfter(value: string): boolean {
  return /^\d{1,9}$/.test(value) || /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(value);
}

/** An answer's JSON; 502 naming the service when it sent something else. */
export function parseAnswer(serviceId: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new UpstreamError(502, 'UPSTREAM_ERROR', 'malformed', `service "${serviceId}" sent an answer that is not JSON`);
  }
}

/** An ApiError that also says, for metrics, what kind of upstream failure it was. */
export class UpstreamError extends ApiError {
  constructor(
    status: number,
    code: ErrorCode,
    readonly kind: string,
    message: string,
    details?: Record<string, unknown>,
    headers?: Record<string, string>,
  ) {
    super(status, code, message, details, headers);
  }
}

const OWN_ERROR_CODES = new Set<string>([
  'INVALID_REQUEST',
  'MISSING_API_KEY',
  'INVALID_API_KEY',
  'EXPIRED_API_KEY',
  'REVOKED_API_KEY',
  'WRONG_HOST',
  'FORBIDDEN',
  'UNKNOWN_SERVICE',
  'NOT_FOUND',
  'PAYLOAD_TOO_LARGE',
  'RATE_LIMITED',
]);

/** A chained gateway's 5xx codes that pass on as they are (an internal error of it stays UPSTREAM_ERROR here). */
const CHAINED_SERVER_ERROR_CODES = new Set<string>(['UPSTREAM_ERROR', 'UPSTREAM_UNAVAILABLE', 'UPSTREAM_TIMEOUT', 'QUOTA_BACKEND_UNAVAILABLE']);

/** A chained aisbreaker gateway's 4xx codes are ours and stay as they are. */
function isOwnErrorCode(code: string): code is ErrorCode {
  return OWN_ERROR_CODES.has(code);
}

/** A chained gateway's codes that pass on as they are, 4xx and 5xx. */
export function isChainedErrorCode(code: string): code is ErrorCode {
  return isOwnErrorCode(code) || CHAINED_SERVER_ERROR_CODES.has(code);
}

/** OpenAI's `{error:{message,code}}` and our own envelope both have this shape. */
function parseErrorBody(text: string): { message?: string; code?: string } {
  try {
    const parsed = JSON.parse(text) as { error?: { message?: unknown; code?: unknown } | string; message?: unknown };
    const error = parsed.error;
    if (typeof error === 'string') return { message: error };
    const message = typeof error?.message === 'string' ? error.message : typeof parsed.message === 'string' ? parsed.message : undefined;
    const code = typeof error?.code === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(error.code) ? error.code : undefined;
    return { message, code };
  } catch {
    return { message: text.trim() || undefined };
  }
}

/** Keys as upstreams quote them: whole ("sk-...", "gsk_...", "aisbreaker_..."), or masked ("abc***wxyz"). */
const QUOTED_KEY = /(?:sk|gsk|xai|key|aisbreaker)[-_][A-Za-z0-9*_.-]{3,}|[A-Za-z0-9_-]{0,16}\*{3,}[A-Za-z0-9_-]{0,16}/g;
const MAX_MESSAGE_CHARS = 1000;

/** The shortest run of a secret's characters that counts as a quote of it. */
export const MIN_QUOTED_RUN = 8;

/**
 * An upstream's error message as the caller may see it: never the secret it was given, not even
 * in part (OpenAI quotes the head and tail of a bad key; a proxy may echo any middle part), then
 * cut to a readable length. Exported for the messages of a chained gateway, which go through the
 * same.
 */
export function upstreamMessage(message: string, secret: string | undefined): string {
  // a long message is cut anyway: what lies beyond twice the length shown cannot reach the caller
  let text = message.slice(0, 2 * MAX_MESSAGE_CHARS);
  if (secret !== undefined && secret.length >= 4) text = withoutRunsOf(text.split(secret).join('[redacted]'), secret);
  return text.replace(QUOTED_KEY, '[redacted]').slice(0, MAX_MESSAGE_CHARS);
}

/**
 * `text` with every run of MIN_QUOTED_RUN or more characters that also stands in `secret`
 * replaced. An aisbreaker token's shared "aisbreaker_" prefix is no secret and stays readable
 * ("aisbreaker:network" in a chained gateway's message).
 */
function withoutRunsOf(text: string, secret: string): string {
  const secretPart = secret.startsWith(TOKEN_PREFIX) ? secret.slice(TOKEN_PREFIX.length) : secret;
  if (secretPart.length < MIN_QUOTED_RUN || text.length < MIN_QUOTED_RUN) return text;
  const pieces = new Set<string>();
  for (let i = 0; i + MIN_QUOTED_RUN <= secretPart.length; i++) pieces.add(secretPart.slice(i, i + MIN_QUOTED_RUN));
  // every position of `text` inside some piece of the secret; a run of them becomes one "[redacted]"
  const quoted = new Uint8Array(text.length);
  for (let i = 0; i + MIN_QUOTED_RUN <= text.length; i++) {
    if (pieces.has(text.slice(i, i + MIN_QUOTED_RUN))) quoted.fill(1, i, i + MIN_QUOTED_RUN);
  }
  if (!quoted.includes(1)) return text;
  let result = '';
  for (let i = 0; i < text.length; i++) {
    if (!quoted[i]) result += text[i];
    else if (i === 0 || !quoted[i - 1]) result += '[redacted]';
  }
  return result;
}

function errorCode(err: unknown): string | undefined {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | null;
  if (typeof e?.code === 'string') return e.code;
  if (typeof e?.cause?.code === 'string') return e.cause.code;
  return undefined;
}

async function readLimited(body: AsyncIterable<Buffer>, maxBytes: number, onTooLarge: () => void): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > maxBytes) {
      onTooLarge();
      break;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
