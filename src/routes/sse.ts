import { once } from 'node:events';
import { encode } from 'eventsource-encoder';
import type { Response } from 'express';

/** Writes a server-sent event stream; framing by eventsource-encoder. */
export class SseWriter {
  constructor(private readonly res: Response) {
    res.status(200).set({
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
      // proxies such as nginx would otherwise buffer the stream
      'X-Accel-Buffering': 'no',
    });
    res.flushHeaders();
  }

  /** false when the client is slower than the stream: the caller should wait for 'drain' */
  send(event: string | undefined, data: unknown): boolean {
    if (this.res.writableEnded || this.res.destroyed) return false;
    const payload = typeof data === 'string' ? data : JSON.stringify(data);
    return this.res.write(encode(event === undefined ? { data: payload } : { event, data: payload }));
  }

  /** Sends, then waits while the client is slower than the stream (back-pressure), until it drains or leaves. */
  async sendInTurn(event: string | undefined, data: unknown, signal: AbortSignal): Promise<void> {
    if (!this.send(event, data) && !this.res.destroyed) await once(this.res, 'drain', { signal });
  }

  end(): void {
    if (!this.res.writableEnded) this.res.end();
  }
}
