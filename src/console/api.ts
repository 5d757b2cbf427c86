/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The gateway's API as the console uses it. Credentials travel in the Authorization header only,
 * never in a URL; every failure becomes an ApiFailure carrying the error envelope's parts.
 */

export interface ConsoleConfig {
  adminKeyRequired: boolean;
  services: string[];
  /** the services that need no secret, which any token may use */
  openServices: string[];
  maxTokenLifetimeSeconds: number;
  defaultExpirationTimeSpan: string;
}

export interface MintResponse {
  access_token: string;
  token_type: string;
  expires_in: number;
}

export interface UsageEntry {
  scope: 'client' | 'global';
  window: string;
  limit: number;
  used: number;
  remaining: number;
  resetSeconds: number;
  unit: 'requests' | 'tokens';
  ancestor?: string;
}

export type Limits = Partial<Record<'requestsPerMinute' | 'requestsPerHour' | 'requestsPerDay' | 'tokensPerMinute' | 'tokensPerHour' | 'tokensPerDay', number>>;

export interface TokenInfo {
  active: boolean;
  jti: string;
  name?: string;
  scopes: string[];
  host: string;
  iat: number;
  exp: number;
  expires_in: number;
  services: string[];
  requestQuotas: { perClientRequestLimits?: Limits; globalRequestLimits?: Limits };
  usage: UsageEntry[];
  parent?: string;
  depth?: number;
}

/** A refused request: HTTP status and the envelope's code, message and details. */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
    readonly retryAfter?: string,
  ) {
    super(message);
    this.name = 'ApiFailure';
  }

  get field(): string | undefined {
    const field = this.details['field'];
    return typeof field === 'string' ? field : undefined;
  }

  /** "401 REVOKED_API_KEY: token has been revoked" */
  describe(): string {
    return `${this.status} ${this.code}: ${this.message}`;
  }
}

interface Envelope {
  error?: { code?: unknown; message?: unknown; details?: unknown };
}

/** The envelope of an error response (or of an error event in a stream) as an ApiFailure. */
export function failureFrom(status: number, body: unknown, retryAfter?: string | null): ApiFailure {
  const error = (body as Envelope | null)?.error;
  const code = typeof error?.code === 'string' ? error.code : `HTTP_${status}`;
  const message = typeof error?.message === 'string' ? error.message : `the gateway answered ${status}`;
  const details = typeof error?.details === 'object' && error.details !== null ? (error.details as Record<string, unknown>) : {};
  return new ApiFailure(status, code, message, details, retryAfter ?? undefined);
}

async function failureOf(res: Response): Promise<ApiFailure> {
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    body = undefined;
  }
  return failureFrom(res.status, body, res.headers.get('Retry-After'));
}

async function call<T>(path: string, init: RequestInit & { bearer?: string | undefined } = {}): Promise<T> {
  const { bearer, ...rest } = init;
  const headers = new Headers(rest.headers);
  if (bearer) headers.set('Authorization', `Bearer ${bearer}`);
  let res: Response;
  try {
    res = await fetch(path, { ...rest, headers, cache: 'no-store', credentials: 'omit' });
  } catch {
    throw new ApiFailure(0, 'NETWORK_ERROR', 'the gateway could not be reached');
  }
  if (!res.ok) throw await failureOf(res);
  return (await res.json()) as T;
}

export function loadConfig(): Promise<ConsoleConfig> {
  return call<ConsoleConfig>('/console/config.json');
}

export function mint(body: unknown, adminKey: string | undefined): Promise<MintResponse> {
  return call<MintResponse>('/api/v1/oauth/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
    bearer: adminKey,
  });
}

export function tokenInfo(token: string): Promise<TokenInfo> {
  return call<TokenInfo>('/api/v1/oauth/tokeninfo', { bearer: token });
}

export function revoke(token: string): Promise<{ revoked: boolean; jti?: string; reason?: string }> {
  return call('/api/v1/oauth/revoke', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ token }),
  });
}

/** The models the token may use (`GET /v1/models`), or [] when the server does not say. */
export async function models(token: string): Promise<string[]> {
  try {
    const list = await call<{ data?: { id?: unknown }[] }>('/v1/models', { bearer: token });
    return (list.data ?? []).map((m) => m.id).filter((id): id is string => typeof id === 'string');
  } catch {
    return [];
  }
}

export interface ChatMessage {
  role: 'user' | 'assistant';
  content: string;
}

interface ChunkShape {
  choices?: { delta?: { content?: unknown }; message?: { content?: unknown } }[];
  error?: unknown;
}

function textOf(chunk: ChunkShape, key: 'delta' | 'message'): string {
  const content = chunk.choices?.[0]?.[key]?.content;
  return typeof content === 'string' ? content : '';
}

/**
 * `POST /v1/chat/completions` with `stream: true`: calls `onDelta` for each piece of the answer
 * as it arrives (server-sent events, `data: {...}` lines, ended by `data: [DONE]`), and resolves
 * with the whole answer. An error response or an error event rejects with an ApiFailure.
 */
export async function streamChat(token: string, model: string, messages: ChatMessage[], onDelta: (text: string) => void, signal: AbortSignal): Promise<string> {
  let res: Response;
  try {
    res = await fetch('/v1/chat/completions', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream', Authorization: `Bearer ${token}` },
      body: JSON.stringify({ model, messages, stream: true }),
      cache: 'no-store',
      credentials: 'omit',
      signal,
    });
  } catch (err) {
    if (signal.aborted) throw err;
    throw new ApiFailure(0, 'NETWORK_ERROR', 'the gateway could not be reached');
  }
  if (!res.ok) throw await failureOf(res);

  if (!(res.headers.get('Content-Type') ?? '').includes('text/event-stream') || !res.body) {
    // a server that answers in one piece
    const whole = textOf((await res.json()) as ChunkShape, 'message');
    onDelta(whole);
    return whole;
  }

  let answer = '';
  const parser = new SseLineParser((data) => {
    if (data === '[DONE]') return true;
    let chunk: ChunkShape;
    try {
      chunk = JSON.parse(data) as ChunkShape;
    } catch {
      return false;
    }
    if (chunk.error !== undefined) throw failureFrom(res.status === 200 ? 502 : res.status, chunk);
    const delta = textOf(chunk, 'delta');
    if (delta) {
      answer += delta;
      onDelta(delta);
    }
    return false;
  });
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (parser.push(value)) break;
    }
  } finally {
    reader.cancel().catch(() => undefined);
  }
  return answer;
}

/**
 * Server-sent events, only as much as an OpenAI stream needs: the data of each event, in order,
 * across chunks split anywhere. The handler returns true to stop.
 */
export class SseLineParser {
  private buffer = '';
  private data: string[] = [];

  constructor(private readonly onData: (data: string) => boolean) {}

  /** Feeds text; true once the handler asked to stop. */
  push(text: string): boolean {
    this.buffer += text;
    let newline: number;
    while ((newline = this.buffer.search(/\r\n|\r|\n/)) >= 0) {
      // a "\r" at the very end may be the first half of a "\r\n" still on its way
      if (newline === this.buffer.length - 1 && this.buffer.endsWith('\r')) break;
      const line = this.buffer.slice(0, newline);
      const width = this.buffer.startsWith('\r\n', newline) ? 2 : 1;
      this.buffer = this.buffer.slice(newline + width);
      if (line === '') {
        if (this.dispatch()) return true;
      } else if (line.startsWith('data:')) {
        this.data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
      }
      // comments (":"), event names and ids carry nothing the console needs
    }
    return false;
  }

  private dispatch(): boolean {
    if (this.data.length === 0) return false;
    const data = this.data.join('\n');
    this.data = [];
    return this.onData(data);
  }
}
