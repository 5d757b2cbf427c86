import { createParser, type EventSourceMessage } from 'eventsource-parser';

/** An upstream's event outgrew the limit: `code` as Node's errors carry one, for Upstream.failure. */
export class EventTooLargeError extends Error {
  readonly code = 'EVENT_TOO_LARGE';
  constructor(readonly maxChars: number) {
    super(`an event of the stream is larger than ${maxChars} characters`);
  }
}

/**
 * The events of an upstream's event stream, as they arrive (framing by eventsource-parser).
 * Pulling drives reading, so a slow consumer slows the upstream down instead of buffering. An
 * event (or an unterminated line) longer than `maxEventChars` ends the stream with
 * EventTooLargeError: an upstream that never ends its line must not fill this process's memory.
 */
export async function* readServerSentEvents(body: AsyncIterable<Buffer>, maxEventChars: number): AsyncGenerator<EventSourceMessage> {
  const pending: EventSourceMessage[] = [];
  let tooLarge = false;
  const parser = createParser({
    onEvent: (event) => pending.push(event),
    onError: (error) => {
      if (error.type === 'max-buffer-size-exceeded') tooLarge = true;
    },
    maxBufferSize: maxEventChars,
  });
  const decoder = new TextDecoder();
  for await (const chunk of body) {
    parser.feed(decoder.decode(chunk, { stream: true }));
    while (pending.length > 0) yield pending.shift() as EventSourceMessage;
    if (tooLarge) throw new EventTooLargeError(maxEventChars);
  }
}
