import { decodeConversationState, encodeConversationState, textMessages, type Message } from './conversation.js';
import type { AisService, ProcessRequest, ResponseFinal, ServiceCall } from './types.js';

/**
 * A chat service answered inside the gateway, no upstream: the base of chat:dummy and
 * chat:echo. It streams its answer word by word when asked, then returns the whole text.
 */
export class LocalChatService implements AisService {
  constructor(
    private readonly answer: (lastUserText: string, history: Message[]) => string,
    private readonly streamDelayMs = 0,
  ) {}

  async process(request: ProcessRequest, call: ServiceCall): Promise<ResponseFinal> {
    const started = Date.now();
    const history = [...decodeConversationState(request.conversationState), ...textMessages(request.inputs)];
    const lastUserText = [...history].reverse().find((m) => m.role === 'user')?.content ?? '';
    const text = this.answer(lastUserText, history);

    if (call.onProgress) {
      const words = splitKeepingSpaces(text);
      for (let i = 0; i < words.length; i++) {
        call.signal.throwIfAborted();
        const isLast = i === words.length - 1;
        call.onProgress({ outputs: [{ text: { index: 0, role: 'assistant', content: words[i] ?? '', isDelta: true, isProcessing: !isLast } }] });
        if (this.streamDelayMs > 0 && !isLast) await sleep(this.streamDelayMs, call.signal);
      }
    }

    history.push({ role: 'assistant', content: text });
    return {
      outputs: [{ text: { index: 0, role: 'assistant', content: text } }],
      conversationState: encodeConversationState(history),
      usage: { engine: { serviceId: call.serviceId }, totalMilliseconds: Date.now() - started },
    };
  }
}

/** "a b c" -> ["a ", "b ", "c"]: the parts concatenate back to the text exactly. */
export function splitKeepingSpaces(text: string): string[] {
  return text.match(/\S+\s*|\s+/g) ?? [''];
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** chat:dummy: a deterministic answer, as AIsBreaker's DummyAssistantService gives. */
export function createDummyService(streamDelayMs = 0): AisService {
  return new LocalChatService((text) => `Hello, the answer to '${text}' from DummyAssistantService is unknown ...`, streamDelayMs);
}

/** chat:echo: answers with the caller's last message. */
export function createEchoService(streamDelayMs = 0): AisService {
  return new LocalChatService((text) => text, streamDelayMs);
}
