import { createParser, type EventSourceMessage } from 'eventsource-parser';

/**
 * The events of an upstream's event stream, as they arrive (framing by eventsource-parser).
 * Pulling drives reading, so a slow consumer slows the upstream down instead of buffering.
 */
export async function* readServerSentEvents(body: AsyncIterable<Buffer>): AsyncGenerator<EventSourceMessage> {
  const pending: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (event) => pending.push(event) });
  const decoder = new TextDecoder();
  for await (const chunk of body) {
    parser.feed(decoder.decode(chunk, { stream: true }));
    while (pending.length > 0) yield pending.shift() as EventSourceMessage;
  }
}
