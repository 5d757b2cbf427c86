import { EventEmitter, on } from 'node:events';
import { decodeConversationState, encodeConversationState, textMessages, type Message } from './conversation.js';
import { completionChunk, completionId, completionObject, inputsFromMessages } from './openai-format.js';
import type { AisService, ChatCompletionsRequest, ChatCompletionsResult, ProcessRequest, ResponseFinal, ServiceCall } from './types.js';

/**
 * A chat service answered inside the gateway, no upstream: the base of chat:dummy and
 * chat:echo. It streams its answer word by word when asked, then returns the whole text.
 */
export class LocalChatService implements AisService {
  readonly needsSecret = false;
  readonly defaultEngine = 'default';

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

  /** The same answer in OpenAI's format: a chat.completion, or its chunks as they are produced. */
  async chatCompletions(request: ChatCompletionsRequest, call: ServiceCall): Promise<ChatCompletionsResult> {
    const id = completionId();
    const created = Math.floor(Date.now() / 1000);
    const model = call.serviceId;
    const processRequest: ProcessRequest = { inputs: inputsFromMessages(request.body.messages) };
    if (request.body.stream !== true) {
      const final = await this.process(processRequest, call);
      const text = final.outputs[0]?.text?.content ?? '';
      return { kind: 'json', body: Buffer.from(JSON.stringify(completionObject(id, model, text, created))) };
    }
    const events = new EventEmitter();
    const chunk = (delta: { role?: string; content?: string }, finish: 'stop' | null): string => JSON.stringify(completionChunk(id, model, created, delta, finish));
    const produced = on(events, 'chunk', { close: ['end'], signal: call.signal });
    events.emit('chunk', chunk({ role: 'assistant', content: '' }, null));
    this.process(processRequest, { ...call, onProgress: (event) => events.emit('chunk', chunk({ content: event.outputs[0]?.text?.content ?? '' }, null)) }).then(
      () => {
        events.emit('chunk', chunk({}, 'stop'));
        events.emit('end');
      },
      (err: unknown) => events.emit('error', err),
    );
    async function* chunks(): AsyncGenerator<string> {
      for await (const [data] of produced) yield data as string;
    }
    return { kind: 'stream', chunks: chunks() };
  }

  models(): string[] {
    return [];
  }

  async close(): Promise<void> {}
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
