import type { IncomingMessage, ServerResponse } from 'node:http';
import { startMockServer, type MockRequest, type MockServer } from './mock-server.js';

/** What the mock does with the next request (one behaviour per request, in order; then `answer`). */
export type MockBehaviour =
  | { kind: 'answer' }
  /** answers with a call of the request's first tool (arguments MOCK_TOOL_ARGUMENTS), JSON or streamed */
  | { kind: 'tool-call' }
  /** an upstream error: this status and JSON body (and these headers) */
  | { kind: 'fail'; status: number; body: unknown; headers?: Record<string, string> }
  /** streams: sends one chunk, then this JSON as a chunk of its own (an error event), then ends */
  | { kind: 'error-chunk'; body: unknown }
  /** accepts the request and never answers */
  | { kind: 'stall' }
  /** streams: sends the first chunk, then nothing more */
  | { kind: 'stall-mid-stream' }
  /** closes the connection without answering */
  | { kind: 'drop' }
  /** streams: sends two chunks, then breaks the connection */
  | { kind: 'drop-mid-stream' }
  /** streams: sends two chunks, then ends the response cleanly but without `data: [DONE]` */
  | { kind: 'end-without-done' }
  /** streams: sends one chunk, then a `data:` line of this many characters that never ends, then holds the connection */
  | { kind: 'endless-line'; chars: number };

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  /** the raw body as received */
  text: string;
  body: { model?: string; messages?: { role: string; content: string }[]; stream?: boolean; stream_options?: { include_usage?: boolean }; tools?: { function: { name: string } }[] } & Record<string, unknown>;
  /** true once the client went away before the answer was complete */
  closedEarly: boolean;
}

/** The answer the mock gives: derived from the request so tests can check it went through. */
export function mockAnswer(lastUserMessage: string): string {
  return `Mock says: you wrote "${lastUserMessage}"`;
}

export const MOCK_USAGE = { prompt_tokens: 11, completion_tokens: 9, total_tokens: 20 };
export const MOCK_TOOL_ARGUMENTS = { city: 'Berlin', unit: 'celsius' };

/**
 * A local OpenAI-compatible upstream for the tests: POST <base>/chat/completions in JSON and
 * streaming, recording everything it receives (including the Authorization header), and able to
 * fail, stall and drop the connection on demand.
 */
export class MockOpenAi {
  readonly received: ReceivedRequest[] = [];
  /** ms between two stream chunks */
  chunkDelayMs = 0;
  private readonly behaviours: MockBehaviour[] = [];
  private readonly closeWaiters: (() => void)[] = [];

  private server: MockServer | undefined;

  get port(): number {
    return this.server?.port ?? 0;
  }

  /** The base URL to configure as the service's baseUrl (OpenAI style, ending in /v1). */
  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}/v1`;
  }

  static async start(): Promise<MockOpenAi> {
    const mock = new MockOpenAi();
    mock.server = await startMockServer((request) => mock.handle(request));
    return mock;
  }

  /** Queues behaviours for the next requests. */
  next(...behaviours: MockBehaviour[]): void {
    this.behaviours.push(...behaviours);
  }

  /** Resolves once a request's client has gone away before its answer was complete. */
  waitForEarlyClose(): Promise<void> {
    if (this.received.some((r) => r.closedEarly)) return Promise.resolve();
    return new Promise((resolve) => this.closeWaiters.push(resolve));
  }

  async close(): Promise<void> {
    await this.server?.close();
  }

  private handle({ req, res, text, json }: MockRequest): void {
    const record: ReceivedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, text, body: json as ReceivedRequest['body'], closedEarly: false };
    this.received.push(record);
    res.on('close', () => {
      if (res.writableFinished) return;
      record.closedEarly = true;
      for (const resolve of this.closeWaiters.splice(0)) resolve();
    });
    this.answer(record, res, this.behaviours.shift() ?? { kind: 'answer' });
  }

  private answer(record: ReceivedRequest, res: ServerResponse, behaviour: MockBehaviour): void {
    const otherApi = /\/v1\/(responses|embeddings|completions|models)(?:\/([^/?]+))?$/.exec(record.path);
    if (otherApi && behaviour.kind === 'fail') {
      res.writeHead(behaviour.status, { 'Content-Type': 'application/json' }).end(JSON.stringify(behaviour.body));
      return;
    }
    if (record.method === 'GET' && record.path.endsWith('/v1/models')) return json(res, 200, { object: 'list', data: MOCK_UPSTREAM_MODELS.map((id) => ({ id, object: 'model', created: 0, owned_by: 'mock' })) });
    if (otherApi?.[1] === 'responses') return answerResponses(record, res, otherApi[2], behaviour);
    if (otherApi?.[1] === 'embeddings') return answerEmbeddings(record, res);
    if (otherApi?.[1] === 'completions') return answerCompletions(record, res);
    if (!record.path.endsWith('/chat/completions')) {
      res.writeHead(404, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error: { message: `no route ${record.path}`, type: 'invalid_request_error', code: null } }));
      return;
    }
    switch (behaviour.kind) {
      case 'fail':
        res.writeHead(behaviour.status, { 'Content-Type': 'application/json', ...behaviour.headers }).end(JSON.stringify(behaviour.body));
        return;
      case 'stall':
        return;
      case 'drop':
        res.socket?.destroy();
        return;
    }
    const messages = record.body.messages ?? [];
    const lastUser = [...messages].reverse().find((m) => m.role === 'user')?.content ?? '';
    const text = mockAnswer(typeof lastUser === 'string' ? lastUser : JSON.stringify(lastUser));
    const model = record.body.model ?? 'unknown';
    const toolCall = behaviour.kind === 'tool-call' ? { id: 'call_mock_1', type: 'function', function: { name: record.body.tools?.[0]?.function.name ?? 'tool', arguments: JSON.stringify(MOCK_TOOL_ARGUMENTS) } } : undefined;
    if (record.body.stream !== true) {
      const message = toolCall ? { role: 'assistant', content: null, tool_calls: [toolCall] } : { role: 'assistant', content: text };
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(
        JSON.stringify({
          id: 'chatcmpl-mock',
          object: 'chat.completion',
          created: 1_700_000_000,
          model,
          choices: [{ index: 0, message, finish_reason: toolCall ? 'tool_calls' : 'stop' }],
          usage: MOCK_USAGE,
        }),
      );
      return;
    }
    const parts = text.match(/\S+\s*/g) ?? [text];
    const chunk = (delta: Record<string, unknown>, finish: string | null): string =>
      JSON.stringify({ id: 'chatcmpl-mock', object: 'chat.completion.chunk', created: 1_700_000_000, model, choices: [{ index: 0, delta, finish_reason: finish }] });
    const payloads = toolCall
      ? [
          chunk({ role: 'assistant', content: null, tool_calls: [{ index: 0, id: toolCall.id, type: 'function', function: { name: toolCall.function.name, arguments: '' } }] }, null),
          ...[toolCall.function.arguments.slice(0, 8), toolCall.function.arguments.slice(8)].map((part) => chunk({ tool_calls: [{ index: 0, function: { arguments: part } }] }, null)),
          chunk({}, 'tool_calls'),
        ]
      : [...parts.map((content, i) => chunk(i === 0 ? { role: 'assistant', content } : { content }, null)), chunk({}, 'stop')];
    if (record.body.stream_options?.include_usage === true) {
      payloads.push(JSON.stringify({ id: 'chatcmpl-mock', object: 'chat.completion.chunk', created: 1_700_000_000, model, choices: [], usage: MOCK_USAGE }));
    }
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    let i = 0;
    const next = (): void => {
      if (res.destroyed) return;
      if (behaviour.kind === 'stall-mid-stream' && i === 1) return;
      if (behaviour.kind === 'drop-mid-stream' && i === 2) {
        res.socket?.destroy();
        return;
      }
      if (behaviour.kind === 'endless-line' && i === 1) {
        res.write('data: ');
        const piece = 'x'.repeat(64 * 1024);
        for (let sent = 0; sent < behaviour.chars && !res.destroyed; sent += piece.length) res.write(piece);
        return;
      }
      if (behaviour.kind === 'error-chunk' && i === 1) {
        res.end(`data: ${JSON.stringify(behaviour.body)}\n\n`);
        return;
      }
      if (behaviour.kind === 'end-without-done' && i === 2) {
        res.end();
        return;
      }
      if (i < payloads.length) {
        res.write(`data: ${payloads[i++]}\n\n`);
        setTimeout(next, this.chunkDelayMs);
        return;
      }
      res.end('data: [DONE]\n\n');
    };
    next();
  }
}

/** what GET /v1/models of the mock lists (an id with a space, which the gateway must not pass on, too) */
export const MOCK_UPSTREAM_MODELS = ['llama3:8b', 'qwen2.5-coder', 'bad id'];
export const MOCK_EMBEDDING_USAGE = { prompt_tokens: 5, total_tokens: 5 };
export const MOCK_RESPONSE_ID = 'resp_mock_0123';

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
}

/** The text of a Responses `input`: a string, or the last user message's text. */
function responsesInputText(input: unknown): string {
  if (typeof input === 'string') return input;
  if (!Array.isArray(input)) return '';
  const last = [...input].reverse().find((item: { role?: string }) => item.role === 'user') as { content?: unknown } | undefined;
  if (typeof last?.content === 'string') return last.content;
  return Array.isArray(last?.content) ? last.content.map((part: { text?: string }) => part.text ?? '').join('') : '';
}

function responseObject(model: string, text: string, status: 'in_progress' | 'completed'): Record<string, unknown> {
  const done = status === 'completed';
  return {
    id: MOCK_RESPONSE_ID,
    object: 'response',
    created_at: 1_700_000_000,
    status,
    model,
    output: done ? [{ type: 'message', id: 'msg_mock', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text, annotations: [] }] }] : [],
    usage: done ? { input_tokens: MOCK_USAGE.prompt_tokens, input_tokens_details: { cached_tokens: 0 }, output_tokens: MOCK_USAGE.completion_tokens, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: MOCK_USAGE.total_tokens } : null,
    error: null,
    incomplete_details: null,
  };
}

/** POST /v1/responses (JSON, or the real event sequence ending with response.completed), GET and DELETE of the stored one. */
function answerResponses(record: ReceivedRequest, res: ServerResponse, id: string | undefined, behaviour: MockBehaviour): void {
  if (id !== undefined) {
    if (id !== MOCK_RESPONSE_ID) return json(res, 404, { error: { message: `No response found with id '${id}'.`, type: 'invalid_request_error', code: null } });
    if (record.method === 'DELETE') return json(res, 200, { id, object: 'response', deleted: true });
    return json(res, 200, responseObject('gpt-4o-mini', mockAnswer('stored'), 'completed'));
  }
  const model = record.body.model ?? 'unknown';
  const text = mockAnswer(responsesInputText(record.body.input));
  if (record.body.stream !== true) return json(res, 200, responseObject(model, text, 'completed'));
  const item = { type: 'message', id: 'msg_mock', status: 'in_progress', role: 'assistant', content: [] };
  const part = { type: 'output_text', text: '', annotations: [] };
  const events: Record<string, unknown>[] = [
    { type: 'response.created', response: responseObject(model, text, 'in_progress') },
    { type: 'response.in_progress', response: responseObject(model, text, 'in_progress') },
    { type: 'response.output_item.added', output_index: 0, item },
    { type: 'response.content_part.added', item_id: 'msg_mock', output_index: 0, content_index: 0, part },
    ...(text.match(/\S+\s*/g) ?? [text]).map((delta) => ({ type: 'response.output_text.delta', item_id: 'msg_mock', output_index: 0, content_index: 0, delta, logprobs: [] })),
    { type: 'response.output_text.done', item_id: 'msg_mock', output_index: 0, content_index: 0, text, logprobs: [] },
    { type: 'response.content_part.done', item_id: 'msg_mock', output_index: 0, content_index: 0, part: { ...part, text } },
    { type: 'response.output_item.done', output_index: 0, item: { ...item, status: 'completed', content: [{ ...part, text }] } },
    { type: 'response.completed', response: responseObject(model, text, 'completed') },
  ];
  res.writeHead(200, { 'Content-Type': 'text/event-stream' });
  // error-chunk: the first event, then the Responses API's own error event
  const sent = behaviour.kind === 'error-chunk' ? [events[0] ?? {}, behaviour.body as Record<string, unknown>] : events;
  sent.forEach((event, i) => res.write(`event: ${String(event.type)}\ndata: ${JSON.stringify({ ...event, sequence_number: i })}\n\n`));
  res.end();
}

function answerEmbeddings(record: ReceivedRequest, res: ServerResponse): void {
  const input = record.body.input;
  const inputs = Array.isArray(input) ? input : [input];
  json(res, 200, { object: 'list', data: inputs.map((_, index) => ({ object: 'embedding', index, embedding: [0.25, -0.5, 1] })), model: record.body.model, usage: MOCK_EMBEDDING_USAGE });
}

/** POST /v1/completions: legacy text completions, JSON or streamed (with the usage chunk when asked). */
function answerCompletions(record: ReceivedRequest, res: ServerResponse): void {
  const model = record.body.model ?? 'unknown';
  const text = mockAnswer(String(record.body.prompt ?? ''));
  const completion = (choices: unknown[], usage?: unknown): string => JSON.stringify({ id: 'cmpl-mock', object: 'text_completion', created: 1_700_000_000, model, choices, ...(usage ? { usage } : {}) });
  if (record.body.stream !== true) return void res.writeHead(200, { 'Content-Type': 'application/json' }).end(completion([{ text, index: 0, logprobs: null, finish_reason: 'stop' }], MOCK_USAGE));
  res.writeHead(200, { 'Content-Type': 'text/event-stream' });
  for (const part of text.match(/\S+\s*/g) ?? [text]) res.write(`data: ${completion([{ text: part, index: 0, logprobs: null, finish_reason: null }])}\n\n`);
  res.write(`data: ${completion([{ text: '', index: 0, logprobs: null, finish_reason: 'stop' }])}\n\n`);
  if (record.body.stream_options?.include_usage === true) res.write(`data: ${completion([], MOCK_USAGE)}\n\n`);
  res.end('data: [DONE]\n\n');
}
