import { invalidRequest } from '../errors.js';
import { assertJsonDepth } from '../json-depth.js';
import type { Input, InputText } from './types.js';

/**
 * Conversation state for the local services: the message history as base64url JSON, opaque to
 * the client, as AIsBreaker does. Only text messages are kept.
 */
export type Message = InputText;

/**
 * The history a state holds, as role and content only: the state comes from the caller, so any
 * other field in it (a forged `tool_calls`, a nesting deep enough to overflow JSON.stringify)
 * must not reach an upstream.
 */
export function decodeConversationState(state: string | undefined): Message[] {
  if (state === undefined || state === '') return [];
  const refused = invalidRequest('request.conversationState', 'not a conversation state returned by this server');
  const bytes = Buffer.from(state, 'base64url');
  try {
    assertJsonDepth(bytes);
  } catch {
    throw refused;
  }
  let messages: unknown;
  try {
    messages = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw refused;
  }
  if (!Array.isArray(messages) || !messages.every(isMessage)) throw refused;
  return messages.map(({ role, content }) => ({ role, content }));
}

export function encodeConversationState(messages: Message[]): string {
  return Buffer.from(JSON.stringify(messages), 'utf8').toString('base64url');
}

export function textMessages(inputs: Input[]): Message[] {
  return inputs.flatMap((input) => (input.text ? [{ role: input.text.role, content: input.text.content }] : []));
}

function isMessage(value: unknown): value is Message {
  const m = value as Partial<Message> | null;
  return typeof m?.role === 'string' && typeof m.content === 'string';
}
