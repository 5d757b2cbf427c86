import { invalidRequest } from '../errors.js';
import type { Input, InputText } from './types.js';

/**
 * Conversation state for the local services: the message history as base64url JSON, opaque to
 * the client, as AIsBreaker does. Only text messages are kept.
 */
export type Message = InputText;

export function decodeConversationState(state: string | undefined): Message[] {
  if (state === undefined || state === '') return [];
  try {
    const messages: unknown = JSON.parse(Buffer.from(state, 'base64url').toString('utf8'));
    if (Array.isArray(messages) && messages.every(isMessage)) return messages;
  } catch {
    // fall through to the error below
  }
  throw invalidRequest('request.conversationState', 'not a conversation state returned by this server');
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
