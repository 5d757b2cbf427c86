import { decodeConversationState, encodeConversationState, textMessages } from './conversation.js';
import { chunkText, completionText } from './openai-format.js';
import { MAX_ANSWER_BYTES, type Upstream } from './upstream.js';
import type { ChatCompletionsRequest, ChatCompletionsResult, ProcessRequest, ResponseFinal, ServiceCall } from './types.js';

/**
 * /api/v1/process for a service with an upstream: translated to a chat completion and back, with
 * the conversation history carried in `conversationState` as the local services do.
 */
export async function processViaChatCompletions(
  chatCompletions: (request: ChatCompletionsRequest, call: ServiceCall) => Promise<ChatCompletionsResult>,
  upstream: Upstream,
  request: ProcessRequest,
  call: ServiceCall,
): Promise<ResponseFinal> {
  const started = Date.now();
  const history = [...decodeConversationState(request.conversationState), ...textMessages(request.inputs)];
  const streaming = call.onProgress !== undefined;
  const result = await chatCompletions({ body: { model: call.engine, messages: history, ...(streaming ? { stream: true } : {}) } }, call);

  let text = '';
  if (result.kind === 'json') {
    text = completionText(upstream.parseAnswer(result.body.toString('utf8')));
  } else {
    for await (const { data } of result.events) {
      const delta = chunkText(upstream.parseAnswer(data));
      if (delta === '') continue;
      text += delta;
      // the whole answer is held for the final event: bounded like a whole JSON answer
      if (text.length > MAX_ANSWER_BYTES) throw upstream.tooLarge();
      await call.onProgress?.({ outputs: [{ text: { index: 0, role: 'assistant', content: delta, isDelta: true, isProcessing: true } }] });
    }
  }
  history.push({ role: 'assistant', content: text });
  return {
    outputs: [{ text: { index: 0, role: 'assistant', content: text } }],
    conversationState: encodeConversationState(history),
    usage: { engine: { serviceId: call.serviceId }, totalMilliseconds: Date.now() - started },
  };
}
