import { invalidRequest } from '../errors.js';
import { isObject, toolArguments, type Json } from './json-shape.js';
import { completionId } from './openai-format.js';
import type { ApiResult, ChatCompletionsBody, ChatCompletionsResult, StreamEvent } from './types.js';

/**
 * OpenAI chat completions as Anthropic Messages, for a /v1/chat/completions call to an anthropic
 * service: system and developer messages become `system`, image parts image blocks, tools and
 * tool calls tool_use blocks, tool messages tool_result blocks; the Message comes back as a chat
 * completion, its events as chunks (with a usage chunk when the caller asked for one).
 */

/** Anthropic needs `max_tokens`; a chat request may leave it out. */
export const DEFAULT_MAX_TOKENS = 4096;

const FINISH_REASONS: Record<string, string> = { end_turn: 'stop', stop_sequence: 'stop', max_tokens: 'length', tool_use: 'tool_calls', refusal: 'content_filter', pause_turn: 'stop' };

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  return Array.isArray(content) ? content.filter((p): p is Json => isObject(p) && p.type === 'text').map((p) => String(p.text ?? '')).join('') : '';
}

function imageBlock(part: Json, field: string): Json {
  const url = isObject(part.image_url) ? part.image_url.url : undefined;
  if (typeof url !== 'string') throw invalidRequest(`${field}.image_url.url`, 'must be a string');
  const data = /^data:([^;,]+);base64,(.*)$/s.exec(url);
  return data ? { type: 'image', source: { type: 'base64', media_type: data[1], data: data[2] } } : { type: 'image', source: { type: 'url', url } };
}

function contentBlocks(content: unknown, field: string): Json[] {
  if (typeof content === 'string') return content === '' ? [] : [{ type: 'text', text: content }];
  if (content === null || content === undefined) return [];
  if (!Array.isArray(content)) throw invalidRequest(field, 'must be a string or an array of parts');
  return content.flatMap((part: unknown, p): Json[] => {
    if (!isObject(part)) throw invalidRequest(`${field}[${p}]`, 'must be an object');
    if (part.type === 'text') return [{ type: 'text', text: String(part.text ?? '') }];
    if (part.type === 'image_url') return [imageBlock(part, `${field}[${p}]`)];
    return [];
  });
}

/** A chat completions body as a Messages body for `engine`. */
export function messagesRequestOf(body: ChatCompletionsBody, engine: string): Json {
  const system: string[] = [];
  const messages: { role: 'user' | 'assistant'; content: Json[] }[] = [];
  // Anthropic wants user and assistant turns: consecutive messages of one role become one
  const add = (role: 'user' | 'assistant', blocks: Json[]): void => {
    const last = messages.at(-1);
    if (last?.role === role) last.content.push(...blocks);
    else messages.push({ role, content: blocks });
  };
  body.messages.forEach((message: unknown, i) => {
    const field = `messages[${i}]`;
    if (!isObject(message)) throw invalidRequest(field, 'must be an object');
    switch (message.role) {
      case 'system':
      case 'developer':
        system.push(textOf(message.content));
        break;
      case 'user':
        add('user', contentBlocks(message.content, `${field}.content`));
        break;
      case 'assistant': {
        const calls = Array.isArray(message.tool_calls) ? message.tool_calls.filter(isObject) : [];
        const uses = calls.map((call) => {
          const fn = isObject(call.function) ? call.function : {};
          return { type: 'tool_use', id: call.id, name: fn.name, input: toolArguments(fn.arguments) };
        });
        add('assistant', [...contentBlocks(message.content, `${field}.content`), ...uses]);
        break;
      }
      case 'tool':
        add('user', [{ type: 'tool_result', tool_use_id: message.tool_call_id, content: textOf(message.content) }]);
        break;
      default:
        throw invalidRequest(`${field}.role`, 'must be "system", "developer", "user", "assistant" or "tool"');
    }
  });
  const tools = Array.isArray(body.tools) ? body.tools.filter(isObject).map((tool) => (isObject(tool.function) ? tool.function : {})) : [];
  const stop = typeof body.stop === 'string' ? [body.stop] : Array.isArray(body.stop) ? body.stop : undefined;
  const maxTokens = body.max_completion_tokens ?? body.max_tokens;
  return {
    model: engine,
    max_tokens: typeof maxTokens === 'number' ? maxTokens : DEFAULT_MAX_TOKENS,
    ...(system.length > 0 ? { system: system.join('\n\n') } : {}),
    messages,
    ...(typeof body.temperature === 'number' ? { temperature: body.temperature } : {}),
    ...(typeof body.top_p === 'number' ? { top_p: body.top_p } : {}),
    ...(stop ? { stop_sequences: stop } : {}),
    ...(tools.length > 0 ? { tools: tools.map((fn) => ({ name: fn.name, ...(typeof fn.description === 'string' ? { description: fn.description } : {}), input_schema: fn.parameters ?? { type: 'object', properties: {} } })) } : {}),
    ...(tools.length > 0 && body.tool_choice !== undefined ? { tool_choice: anthropicToolChoice(body.tool_choice) } : {}),
    ...(typeof body.user === 'string' ? { metadata: { user_id: body.user } } : {}),
    ...(body.stream === true ? { stream: true } : {}),
  };
}

function anthropicToolChoice(choice: unknown): Json {
  if (choice === 'required') return { type: 'any' };
  if (choice === 'none') return { type: 'none' };
  if (isObject(choice) && isObject(choice.function) && typeof choice.function.name === 'string') return { type: 'tool', name: choice.function.name };
  return { type: 'auto' };
}

interface ChatUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** Anthropic's usage as OpenAI's: every input token (cache reads and writes too) is a prompt token. */
function chatUsage(usage: Json): ChatUsage {
  const n = (field: string): number => (typeof usage[field] === 'number' ? usage[field] : 0);
  const prompt = n('input_tokens') + n('cache_creation_input_tokens') + n('cache_read_input_tokens');
  const completion = n('output_tokens');
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/** A Message as a chat completion, named by the model the caller asked for. */
export function completionOf(message: unknown, model: string): Json {
  const m = isObject(message) ? message : {};
  const blocks = Array.isArray(m.content) ? m.content.filter(isObject) : [];
  const text = blocks.filter((b) => b.type === 'text').map((b) => String(b.text ?? '')).join('');
  const toolCalls = blocks.filter((b) => b.type === 'tool_use').map((b) => ({ id: b.id, type: 'function', function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) } }));
  return {
    id: completionId(),
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: text === '' && toolCalls.length > 0 ? null : text, refusal: null, ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}) },
        logprobs: null,
        finish_reason: FINISH_REASONS[String(m.stop_reason)] ?? 'stop',
      },
    ],
    usage: chatUsage(isObject(m.usage) ? m.usage : {}),
  };
}

/**
 * Anthropic's events as chat completion chunks: text deltas as content, tool_use blocks as
 * tool_calls (one index per call), message_delta's stop reason as finish_reason, then a usage
 * chunk if `includeUsage`. An `error` event fails the stream with the upstream's message.
 */
export async function* completionChunksOf(events: AsyncIterable<StreamEvent>, model: string, includeUsage: boolean, parse: (data: string) => unknown, failed: (message: string) => Error): AsyncGenerator<StreamEvent> {
  const id = completionId();
  const created = Math.floor(Date.now() / 1000);
  const chunk = (delta: Json, finishReason: string | null = null): StreamEvent => ({ data: JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }] }) });
  const usage: Json = {};
  const toolIndexOfBlock = new Map<number, number>();
  for await (const { event, data } of events) {
    const payload = parse(data);
    if (!isObject(payload)) continue;
    switch (event) {
      case 'message_start':
        Object.assign(usage, isObject(payload.message) && isObject(payload.message.usage) ? payload.message.usage : {});
        yield chunk({ role: 'assistant', content: '' });
        break;
      case 'content_block_start': {
        const block = isObject(payload.content_block) ? payload.content_block : {};
        if (block.type === 'tool_use' && typeof payload.index === 'number') {
          const toolIndex = toolIndexOfBlock.size;
          toolIndexOfBlock.set(payload.index, toolIndex);
          yield chunk({ tool_calls: [{ index: toolIndex, id: block.id, type: 'function', function: { name: block.name, arguments: '' } }] });
        }
        break;
      }
      case 'content_block_delta': {
        const delta = isObject(payload.delta) ? payload.delta : {};
        if (delta.type === 'text_delta' && typeof delta.text === 'string') yield chunk({ content: delta.text });
        else if (delta.type === 'input_json_delta' && typeof delta.partial_json === 'string' && typeof payload.index === 'number') {
          yield chunk({ tool_calls: [{ index: toolIndexOfBlock.get(payload.index) ?? 0, function: { arguments: delta.partial_json } }] });
        }
        break;
      }
      case 'message_delta': {
        Object.assign(usage, isObject(payload.usage) ? payload.usage : {});
        const delta = isObject(payload.delta) ? payload.delta : {};
        yield chunk({}, FINISH_REASONS[String(delta.stop_reason)] ?? 'stop');
        break;
      }
      case 'message_stop':
        if (includeUsage) yield { data: JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [], usage: chatUsage(usage) }) };
        return;
      case 'error': {
        const error = isObject(payload.error) ? payload.error : {};
        throw failed(typeof error.message === 'string' ? error.message : 'the service failed');
      }
    }
  }
}

/** A Messages result as a chat completion result. */
export function chatResultOf(result: ApiResult, model: string, includeUsage: boolean, parse: (data: string) => unknown, failed: (message: string) => Error): ChatCompletionsResult {
  if (result.kind === 'json') return { kind: 'json', body: Buffer.from(JSON.stringify(completionOf(parse(result.body.toString('utf8')), model))) };
  return { kind: 'stream', events: completionChunksOf(result.events, model, includeUsage, parse, failed) };
}
