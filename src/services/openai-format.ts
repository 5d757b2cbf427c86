import { randomBytes } from 'node:crypto';
import type { Message } from './conversation.js';
import type { LlmUsage } from './types.js';

/**
 * The OpenAI chat completions format, both ways: AIsBreaker inputs to OpenAI messages (for
 * /api/v1/process on an OpenAI service) and local answers to OpenAI completions and chunks
 * (for /v1/chat/completions on chat:dummy and chat:echo).
 */

/** OpenAI message content is a string or an array of parts; only text parts carry over. */
export function messageText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((part: unknown) => {
      const p = part as { type?: unknown; text?: unknown } | null;
      return p?.type === 'text' && typeof p.text === 'string' ? p.text : '';
    })
    .join('');
}

/** OpenAI messages as the local services' conversation: role and text of each. */
export function conversationOf(messages: unknown[]): Message[] {
  return messages.map((m) => {
    const message = m as { role?: unknown; content?: unknown } | null;
    return { role: typeof message?.role === 'string' ? message.role : 'user', content: messageText(message?.content) };
  });
}

export function completionId(): string {
  return `chatcmpl-${randomBytes(12).toString('base64url')}`;
}

export function completionObject(id: string, model: string, text: string, created: number): object {
  return {
    id,
    object: 'chat.completion',
    created,
    model,
    choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null }, logprobs: null, finish_reason: 'stop' }],
  };
}

export function completionChunk(id: string, model: string, created: number, delta: { role?: string; content?: string }, finishReason: 'stop' | null): object {
  return { id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }] };
}

/** The text of a whole completion (first choice). */
export function completionText(completion: unknown): string {
  const c = completion as { choices?: { message?: { content?: unknown } }[] } | null;
  return messageText(c?.choices?.[0]?.message?.content);
}

/** The new text of a stream chunk (first choice), '' when it carries none. */
export function chunkText(chunk: unknown): string {
  const c = chunk as { choices?: { delta?: { content?: unknown } }[] } | null;
  const content = c?.choices?.[0]?.delta?.content;
  return typeof content === 'string' ? content : '';
}

/** `usage` of a completion or of the usage chunk of a stream. */
export function usageOf(value: unknown): LlmUsage | undefined {
  const usage = (value as { usage?: { total_tokens?: unknown; prompt_tokens?: unknown; completion_tokens?: unknown } | null } | null)?.usage;
  const total = usage?.total_tokens;
  if (!isCount(total)) return undefined;
  return { total_tokens: total, ...(isCount(usage?.prompt_tokens) ? { prompt_tokens: usage.prompt_tokens } : {}), ...(isCount(usage?.completion_tokens) ? { completion_tokens: usage.completion_tokens } : {}) };
}

/** The `model` a completion or chunk says answered. */
export function answerModelOf(value: unknown): string | undefined {
  const model = (value as { model?: unknown } | null)?.model;
  return typeof model === 'string' && model.length > 0 ? model : undefined;
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}
