import { randomBytes } from 'node:crypto';
import { invalidRequest } from '../errors.js';
import { isObject, toolArguments, type Json } from './json-shape.js';
import { parseAnswer } from './upstream.js';
import type { AisService, ApiResult, ChatCompletionsBody, ChatCompletionsResult, ServiceCall, StreamEvent } from './types.js';

/**
 * Anthropic Messages as OpenAI chat completions, for a /v1/messages call to a service that speaks
 * only chat completions (an OpenAI-compatible upstream, the local services): the request becomes
 * a chat completion (system, messages, images, tools, tool results, stop sequences), its answer a
 * Message, its stream Anthropic's events in order with the usage at the end. Anthropic-only
 * fields (thinking, cache_control, context_management, betas) have no counterpart and are left out.
 */

const STOP_REASONS: Record<string, string> = { stop: 'end_turn', length: 'max_tokens', tool_calls: 'tool_use', function_call: 'tool_use', content_filter: 'refusal' };

/** Anthropic content (a string or blocks) as text: the text blocks joined. */
function textOf(content: unknown, field: string): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw invalidRequest(field, 'must be a string or an array of content blocks');
  return content
    .filter((block): block is Json => isObject(block) && block.type === 'text')
    .map((block) => (typeof block.text === 'string' ? block.text : ''))
    .join('\n');
}

function imagePart(block: Json, field: string): Json {
  const source = block.source;
  if (isObject(source) && source.type === 'base64' && typeof source.media_type === 'string' && typeof source.data === 'string') {
    return { type: 'image_url', image_url: { url: `data:${source.media_type};base64,${source.data}` } };
  }
  if (isObject(source) && source.type === 'url' && typeof source.url === 'string') return { type: 'image_url', image_url: { url: source.url } };
  throw invalidRequest(`${field}.source`, 'must be a base64 or url image source');
}

function toolResultText(content: unknown): string {
  if (content === undefined) return '';
  if (typeof content === 'string') return content;
  return Array.isArray(content) ? content.filter((b): b is Json => isObject(b) && b.type === 'text').map((b) => String(b.text ?? '')).join('\n') : JSON.stringify(content);
}

/** One Anthropic message as the chat messages it stands for (tool results are messages of their own). */
function chatMessages(message: unknown, index: number): Json[] {
  const field = `messages[${index}]`;
  if (!isObject(message)) throw invalidRequest(field, 'must be an object');
  const { role, content } = message;
  if (role === 'system') return [{ role: 'system', content: textOf(content, `${field}.content`) }];
  if (role !== 'user' && role !== 'assistant') throw invalidRequest(`${field}.role`, 'must be "user" or "assistant"');
  if (typeof content === 'string') return [{ role, content }];
  if (!Array.isArray(content)) throw invalidRequest(`${field}.content`, 'must be a string or an array of content blocks');
  const toolResults: Json[] = [];
  const parts: Json[] = [];
  const toolCalls: Json[] = [];
  content.forEach((block: unknown, b) => {
    const blockField = `${field}.content[${b}]`;
    if (!isObject(block)) throw invalidRequest(blockField, 'must be an object');
    switch (block.type) {
      case 'text':
        parts.push({ type: 'text', text: typeof block.text === 'string' ? block.text : '' });
        break;
      case 'image':
        parts.push(imagePart(block, blockField));
        break;
      case 'tool_use':
        toolCalls.push({ id: block.id, type: 'function', function: { name: block.name, arguments: JSON.stringify(block.input ?? {}) } });
        break;
      case 'tool_result': {
        const text = toolResultText(block.content);
        toolResults.push({ role: 'tool', tool_call_id: block.tool_use_id, content: block.is_error === true ? `Error: ${text}` : text });
        break;
      }
      // thinking, redacted_thinking, documents and server tool blocks have no chat counterpart
    }
  });
  if (role === 'assistant') {
    const text = parts.filter((p) => p.type === 'text').map((p) => p.text).join('');
    return [{ role, content: text === '' && toolCalls.length > 0 ? null : text, ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}) }];
  }
  // tool results answer the assistant's calls just before: they come first
  return [...toolResults, ...(parts.length > 0 ? [{ role, content: parts.every((p) => p.type === 'text') ? parts.map((p) => p.text).join('') : parts }] : [])];
}

function chatTool(tool: unknown): Json | undefined {
  if (!isObject(tool) || typeof tool.name !== 'string') return undefined;
  // server tools (web search, bash, ...) carry a type and no schema: nothing a chat model can call
  if (tool.input_schema === undefined) return undefined;
  return { type: 'function', function: { name: tool.name, ...(typeof tool.description === 'string' ? { description: tool.description } : {}), parameters: tool.input_schema } };
}

function chatToolChoice(choice: unknown): unknown {
  if (!isObject(choice)) return undefined;
  if (choice.type === 'any') return 'required';
  if (choice.type === 'tool' && typeof choice.name === 'string') return { type: 'function', function: { name: choice.name } };
  return choice.type === 'none' ? 'none' : choice.type === 'auto' ? 'auto' : undefined;
}

/** A Messages request body as a chat completions body for `engine`. */
export function chatRequestOf(body: Json, engine: string): ChatCompletionsBody {
  const messages: Json[] = [];
  if (body.system !== undefined) messages.push({ role: 'system', content: textOf(body.system, 'system') });
  (body.messages as unknown[]).forEach((message, i) => messages.push(...chatMessages(message, i)));
  const tools = Array.isArray(body.tools) ? body.tools.map(chatTool).filter((t) => t !== undefined) : [];
  const toolChoice = tools.length > 0 ? chatToolChoice(body.tool_choice) : undefined;
  const stop = Array.isArray(body.stop_sequences) ? body.stop_sequences : undefined;
  return {
    model: engine,
    messages,
    ...(typeof body.max_tokens === 'number' ? { max_tokens: body.max_tokens } : {}),
    ...(typeof body.temperature === 'number' ? { temperature: body.temperature } : {}),
    ...(typeof body.top_p === 'number' ? { top_p: body.top_p } : {}),
    ...(stop && stop.length > 0 ? { stop } : {}),
    ...(tools.length > 0 ? { tools } : {}),
    ...(toolChoice !== undefined ? { tool_choice: toolChoice } : {}),
    ...(body.stream === true ? { stream: true, stream_options: { include_usage: true } } : {}),
  };
}

function messageId(): string {
  return `msg_${randomBytes(12).toString('base64url')}`;
}

function anthropicUsage(usage: unknown): { input_tokens: number; output_tokens: number } {
  const u = isObject(usage) ? usage : {};
  return { input_tokens: typeof u.prompt_tokens === 'number' ? u.prompt_tokens : 0, output_tokens: typeof u.completion_tokens === 'number' ? u.completion_tokens : 0 };
}

/** A chat completion as a Message, named by the model the caller asked for. */
export function messageOf(completion: unknown, model: string): Json {
  const choice = isObject(completion) && Array.isArray(completion.choices) && isObject(completion.choices[0]) ? completion.choices[0] : {};
  const message = isObject(choice.message) ? choice.message : {};
  const content: Json[] = [];
  if (typeof message.content === 'string' && message.content !== '') content.push({ type: 'text', text: message.content });
  for (const call of Array.isArray(message.tool_calls) ? message.tool_calls : []) {
    if (!isObject(call) || !isObject(call.function)) continue;
    content.push({ type: 'tool_use', id: call.id, name: call.function.name, input: toolArguments(call.function.arguments) });
  }
  const finish = typeof choice.finish_reason === 'string' ? choice.finish_reason : 'stop';
  return {
    id: messageId(),
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: STOP_REASONS[finish] ?? 'end_turn',
    stop_sequence: null,
    usage: anthropicUsage(isObject(completion) ? completion.usage : undefined),
  };
}

function event(type: string, fields: Json): StreamEvent {
  return { event: type, data: JSON.stringify({ type, ...fields }) };
}

/**
 * Chat completion chunks as Anthropic's events: message_start, then a content block per text run
 * and per tool call (start, deltas, stop), then message_delta with the stop reason and usage,
 * and message_stop. `parse` reads a chunk (the upstream's, so it may refuse malformed JSON).
 */
export async function* messageEventsOf(chunks: AsyncIterable<StreamEvent>, model: string, parse: (data: string) => unknown): AsyncGenerator<StreamEvent> {
  yield event('message_start', { message: { id: messageId(), type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 0, output_tokens: 0 } } });
  let index = -1;
  let open: 'text' | 'tool' | undefined;
  const toolBlocks = new Map<number, number>();
  let stopReason = 'end_turn';
  let usage = { input_tokens: 0, output_tokens: 0 };
  const close = function* (): Generator<StreamEvent> {
    if (open !== undefined) yield event('content_block_stop', { index });
    open = undefined;
  };
  for await (const { data } of chunks) {
    const chunk = parse(data);
    if (!isObject(chunk)) continue;
    if (chunk.usage !== undefined && chunk.usage !== null) usage = anthropicUsage(chunk.usage);
    const choice = Array.isArray(chunk.choices) && isObject(chunk.choices[0]) ? chunk.choices[0] : undefined;
    if (!choice) continue;
    const delta = isObject(choice.delta) ? choice.delta : {};
    if (typeof delta.content === 'string' && delta.content !== '') {
      if (open !== 'text') {
        yield* close();
        open = 'text';
        yield event('content_block_start', { index: ++index, content_block: { type: 'text', text: '' } });
      }
      yield event('content_block_delta', { index, delta: { type: 'text_delta', text: delta.content } });
    }
    for (const call of Array.isArray(delta.tool_calls) ? delta.tool_calls : []) {
      if (!isObject(call)) continue;
      const callIndex = typeof call.index === 'number' ? call.index : 0;
      const fn = isObject(call.function) ? call.function : {};
      if (!toolBlocks.has(callIndex)) {
        yield* close();
        open = 'tool';
        toolBlocks.set(callIndex, ++index);
        yield event('content_block_start', { index, content_block: { type: 'tool_use', id: call.id ?? `toolu_${randomBytes(12).toString('base64url')}`, name: fn.name ?? '', input: {} } });
      }
      if (typeof fn.arguments === 'string' && fn.arguments !== '') {
        yield event('content_block_delta', { index: toolBlocks.get(callIndex), delta: { type: 'input_json_delta', partial_json: fn.arguments } });
      }
    }
    if (typeof choice.finish_reason === 'string') stopReason = STOP_REASONS[choice.finish_reason] ?? 'end_turn';
  }
  yield* close();
  yield event('message_delta', { delta: { stop_reason: stopReason, stop_sequence: null }, usage });
  yield event('message_stop', {});
}

/** A chat completion result as a Messages result. */
export function messagesResultOf(result: ChatCompletionsResult, model: string, parse: (data: string) => unknown): ApiResult {
  if (result.kind === 'json') return { kind: 'json', body: Buffer.from(JSON.stringify(messageOf(parse(result.body.toString('utf8')), model))) };
  return { kind: 'stream', events: messageEventsOf(result.events, model, parse) };
}

/**
 * /v1/messages on a service that speaks chat completions: `body` (checked by the route) asked of
 * it as a chat completion, the answer named by the model the caller asked for.
 */
export async function messagesViaChatCompletions(service: AisService, body: Json & { model: string }, call: ServiceCall): Promise<ApiResult> {
  const result = await service.chatCompletions({ body: chatRequestOf(body, call.engine) }, call);
  return messagesResultOf(result, body.model, (data) => parseAnswer(call.serviceId, data));
}
