import type { IncomingMessage, ServerResponse } from 'node:http';
import { startMockServer, type MockRequest, type MockServer } from './mock-server.js';

/** What the mock does with the next request (one behaviour per request, in order; then `answer`). */
export type MockAnthropicBehaviour =
  | { kind: 'answer' }
  /** an upstream error: this status and JSON body */
  | { kind: 'fail'; status: number; body: unknown }
  /** streams: message_start and one text delta, then breaks the connection */
  | { kind: 'drop-mid-stream' }
  /** streams: message_start, then an `error` event (as Anthropic reports overload mid-stream), with this message */
  | { kind: 'error-event'; message?: string };

export interface ReceivedAnthropicRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  text: string;
  body: Record<string, unknown> & { model?: string; messages?: { role: string; content: unknown }[]; stream?: boolean; system?: unknown; tools?: { name: string }[] };
}

/** The usage the mock reports: cache reads count too, so LLM-token limits see 12 + 3 + 8 = 23. */
export const MOCK_ANTHROPIC_USAGE = { input_tokens: 12, cache_read_input_tokens: 3, output_tokens: 8 };
export const MOCK_ANTHROPIC_TOTAL = 23;
/** what the mock's count_tokens answers */
export const MOCK_COUNTED_TOKENS = 42;
/** the tool input the mock asks for when given tools */
export const MOCK_TOOL_INPUT = { city: 'Paris', days: 3 };

export function mockClaudeAnswer(lastUserText: string): string {
  return `Claude mock says: you wrote "${lastUserText}"`;
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((block: { type?: string; text?: string; content?: unknown }) => (block.type === 'text' ? (block.text ?? '') : block.type === 'tool_result' ? `[result ${textOf(block.content)}]` : '')).join('');
}

/**
 * A local Anthropic-compatible upstream: POST /v1/messages (JSON and Anthropic's event stream, in
 * the real order: message_start, content_block_start, ping, content_block_delta..., content_block_stop,
 * message_delta, message_stop) and /v1/messages/count_tokens. It checks what Anthropic checks:
 * `x-api-key` (one of `acceptedKeys`) and `anthropic-version`, answering Anthropic's errors
 * otherwise; it records `anthropic-beta`. Given tools and no tool result yet, it calls the first tool.
 */
export class MockAnthropic {
  readonly received: ReceivedAnthropicRequest[] = [];
  readonly acceptedKeys = new Set<string>();
  /** ms between two stream events */
  eventDelayMs = 0;
  private readonly behaviours: MockAnthropicBehaviour[] = [];

  private server: MockServer | undefined;

  get port(): number {
    return this.server?.port ?? 0;
  }

  /** The base URL to configure (Anthropic style, without /v1). */
  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(...acceptedKeys: string[]): Promise<MockAnthropic> {
    const mock = new MockAnthropic();
    for (const key of acceptedKeys) mock.acceptedKeys.add(key);
    mock.server = await startMockServer((request) => mock.handle(request));
    return mock;
  }

  next(...behaviours: MockAnthropicBehaviour[]): void {
    this.behaviours.push(...behaviours);
  }

  async close(): Promise<void> {
    await this.server?.close();
  }

  private handle({ req, res, text, json }: MockRequest): void {
    const record = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, text, body: json as ReceivedAnthropicRequest['body'] };
    this.received.push(record);
    this.answer(record, res, this.behaviours.shift() ?? { kind: 'answer' });
  }

  private error(res: ServerResponse, status: number, type: string, message: string): void {
    res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify({ type: 'error', error: { type, message } }));
  }

  private answer(record: ReceivedAnthropicRequest, res: ServerResponse, behaviour: MockAnthropicBehaviour): void {
    const path = record.path.split('?')[0];
    if (path !== '/v1/messages' && path !== '/v1/messages/count_tokens') return this.error(res, 404, 'not_found_error', `no route ${record.path}`);
    const key = record.headers['x-api-key'];
    if (typeof key !== 'string' || !this.acceptedKeys.has(key)) return this.error(res, 401, 'authentication_error', `invalid x-api-key ${String(key)}`);
    if (record.headers['anthropic-version'] === undefined) return this.error(res, 400, 'invalid_request_error', 'anthropic-version: header is required');
    if (behaviour.kind === 'fail') {
      res.writeHead(behaviour.status, { 'Content-Type': 'application/json' }).end(JSON.stringify(behaviour.body));
      return;
    }
    if (path === '/v1/messages/count_tokens') {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ input_tokens: MOCK_COUNTED_TOKENS }));
      return;
    }
    const messages = record.body.messages ?? [];
    const last = messages.at(-1);
    const wantsTool = (record.body.tools?.length ?? 0) > 0 && !JSON.stringify(last?.content ?? '').includes('tool_result');
    const model = record.body.model ?? 'unknown';
    const text = mockClaudeAnswer(textOf(last?.content));
    const tool = wantsTool ? { type: 'tool_use', id: 'toolu_mock_1', name: record.body.tools?.[0]?.name ?? 'tool', input: MOCK_TOOL_INPUT } : undefined;
    const stopReason = tool ? 'tool_use' : 'end_turn';
    if (record.body.stream !== true) {
      const content = tool ? [{ type: 'text', text: 'Let me look that up.' }, tool] : [{ type: 'text', text }];
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(
        JSON.stringify({ id: 'msg_mock', type: 'message', role: 'assistant', model, content, stop_reason: stopReason, stop_sequence: null, usage: MOCK_ANTHROPIC_USAGE }),
      );
      return;
    }
    const events: [string, unknown][] = [
      ['message_start', { type: 'message_start', message: { id: 'msg_mock', type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 12, cache_read_input_tokens: 3, output_tokens: 1 } } }],
    ];
    if (behaviour.kind === 'error-event') {
      events.push(['error', { type: 'error', error: { type: 'overloaded_error', message: behaviour.message ?? 'Overloaded' } }]);
    } else if (tool) {
      events.push(['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }]);
      events.push(['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Let me look that up.' } }]);
      events.push(['content_block_stop', { type: 'content_block_stop', index: 0 }]);
      events.push(['content_block_start', { type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: tool.id, name: tool.name, input: {} } }]);
      const json = JSON.stringify(MOCK_TOOL_INPUT);
      for (const part of [json.slice(0, 9), json.slice(9)]) events.push(['content_block_delta', { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: part } }]);
      events.push(['content_block_stop', { type: 'content_block_stop', index: 1 }]);
    } else {
      events.push(['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }]);
      events.push(['ping', { type: 'ping' }]);
      for (const word of text.match(/\S+\s*/g) ?? [text]) events.push(['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: word } }]);
      events.push(['content_block_stop', { type: 'content_block_stop', index: 0 }]);
    }
    if (behaviour.kind !== 'error-event') {
      events.push(['message_delta', { type: 'message_delta', delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: 8 } }]);
      events.push(['message_stop', { type: 'message_stop' }]);
    }
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    const dropAt = behaviour.kind === 'drop-mid-stream' ? 3 : events.length;
    let i = 0;
    const next = (): void => {
      if (res.destroyed) return;
      // what was written reaches the gateway before the connection breaks
      if (i === dropAt && dropAt < events.length) return void setTimeout(() => res.socket?.destroy(), 50);
      const [event, data] = events[i++] ?? [];
      if (event === undefined) return void res.end();
      res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      if (this.eventDelayMs > 0) setTimeout(next, this.eventDelayMs);
      else next();
    };
    next();
  }
}
