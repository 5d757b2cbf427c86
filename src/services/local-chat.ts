import { sleepUnlessAborted } from '../clock.js';
import { decodeConversationState, encodeConversationState, textMessages, type Message } from './conversation.js';
import { completionChunk, completionId, completionObject, conversationOf } from './openai-format.js';
import type { AisService, ChatCompletionsRequest, ChatCompletionsResult, ProcessRequest, ResponseFinal, ServiceCall, StreamEvent } from './types.js';

/**
 * A chat service answered inside the gateway, no upstream: the base of chat:dummy and
 * chat:echo. It streams its answer word by word when asked, then returns the whole text.
 */
export class LocalChatService implements AisService {
  readonly needsSecret = false;
  readonly defaultEngine = 'default';
  readonly forwards = [];

  constructor(
    private readonly answer: (lastUserText: string, history: Message[]) => string,
    private readonly streamDelayMs = 0,
  ) {}

  async process(request: ProcessRequest, call: ServiceCall): Promise<ResponseFinal> {
    const started = Date.now();
    const history = [...decodeConversationState(request.conversationState), ...textMessages(request.inputs)];
    const text = this.answerTo(history);
    if (call.onProgress) {
      for await (const { word, isLast } of this.words(text, call.signal)) {
        await call.onProgress({ outputs: [{ text: { index: 0, role: 'assistant', content: word, isDelta: true, isProcessing: !isLast } }] });
      }
    }
    history.push({ role: 'assistant', content: text });
    return {
      outputs: [{ text: { index: 0, role: 'assistant', content: text } }],
      conversationState: encodeConversationState(history),
      usage: { engine: { serviceId: call.serviceId }, totalMilliseconds: Date.now() - started },
    };
  }

  /** The same answer in OpenAI's format: a chat.completion, or its chunks word by word. */
  async chatCompletions(request: ChatCompletionsRequest, call: ServiceCall): Promise<ChatCompletionsResult> {
    const id = completionId();
    const created = Math.floor(Date.now() / 1000);
    const model = call.serviceId;
    const text = this.answerTo(conversationOf(request.body.messages));
    if (request.body.stream !== true) {
      return { kind: 'json', body: Buffer.from(JSON.stringify(completionObject(id, model, text, created))) };
    }
    const chunk = (delta: { role?: string; content?: string }, finish: 'stop' | null): string => JSON.stringify(completionChunk(id, model, created, delta, finish));
    const words = this.words(text, call.signal);
    async function* chunks(): AsyncGenerator<StreamEvent> {
      yield { data: chunk({ role: 'assistant', content: '' }, null) };
      for await (const { word } of words) yield { data: chunk({ content: word }, null) };
      yield { data: chunk({}, 'stop') };
    }
    return { kind: 'stream', events: chunks() };
  }

  private answerTo(history: Message[]): string {
    const lastUserText = [...history].reverse().find((m) => m.role === 'user')?.content ?? '';
    return this.answer(lastUserText, history);
  }

  /**
   * The answer as it is streamed: word by word (a long answer in at most MAX_STREAMED_PIECES runs of
   * words), paced by streamDelayMs, stopping when the caller leaves. It gives the event loop a turn
   * every few pieces: a long echo written in one go held every other request (a 1 MB echo: 2 s).
   */
  private async *words(text: string, signal: AbortSignal): AsyncGenerator<{ word: string; isLast: boolean }> {
    const pieces = piecesOf(text);
    for (let i = 0; i < pieces.length; i++) {
      signal.throwIfAborted();
      const isLast = i === pieces.length - 1;
      yield { word: pieces[i] ?? '', isLast };
      if (this.streamDelayMs > 0 && !isLast) await sleepUnlessAborted(this.streamDelayMs, signal);
      else if (i % YIELD_EVERY === YIELD_EVERY - 1) await new Promise((resolve) => setImmediate(resolve));
    }
  }

  models(): string[] {
    return [];
  }

  async close(): Promise<void> {}
}

/** "a b c" -> ["a ", "b ", "c"]: the parts concatenate back to the text exactly. */
function splitKeepingSpaces(text: string): string[] {
  return text.match(/\S+\s*|\s+/g) ?? [''];
}

/** Most events a local answer is streamed in: each costs ~150 bytes of framing, so a 1 MB echo word by word was 106 MB. */
export const MAX_STREAMED_PIECES = 1000;
const YIELD_EVERY = 32;

/** The words of `text`, runs of several words each once there are more than MAX_STREAMED_PIECES. */
export function piecesOf(text: string): string[] {
  const words = splitKeepingSpaces(text);
  if (words.length <= MAX_STREAMED_PIECES) return words;
  const perPiece = Math.ceil(words.length / MAX_STREAMED_PIECES);
  const pieces: string[] = [];
  for (let i = 0; i < words.length; i += perPiece) pieces.push(words.slice(i, i + perPiece).join(''));
  return pieces;
}


/** chat:dummy: a deterministic answer, as AIsBreaker's DummyAssistantService gives. */
export function createDummyService(streamDelayMs = 0): AisService {
  return new LocalChatService((text) => `Hello, the answer to '${text}' from DummyAssistantService is unknown ...`, streamDelayMs);
}

/** chat:echo: answers with the caller's last message. */
export function createEchoService(streamDelayMs = 0): AisService {
  return new LocalChatService((text) => text, streamDelayMs);
}
