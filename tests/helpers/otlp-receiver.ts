import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One attribute value as OTLP/JSON writes it. */
interface AnyValue {
  stringValue?: string;
  intValue?: number | string;
  doubleValue?: number;
  boolValue?: boolean;
}

interface OtlpAttribute {
  key: string;
  value: AnyValue;
}

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: Record<string, string | number | boolean>;
  events: { name: string; attributes: Record<string, string | number | boolean> }[];
  status?: { code?: number };
  resource: Record<string, string | number | boolean>;
}

function flatten(attributes: OtlpAttribute[] = []): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const { key, value } of attributes) {
    const v = value.stringValue ?? value.boolValue ?? value.doubleValue ?? (value.intValue === undefined ? undefined : Number(value.intValue));
    if (v !== undefined) out[key] = v;
  }
  return out;
}

/** A local OTLP/HTTP (JSON) trace receiver: what an OpenTelemetry collector would get. */
export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  /** every export request's body as received, for checking what never appears in it */
  readonly raw: string[] = [];

  private constructor(private readonly server: Server, readonly port: number) {}

  /** OTEL_EXPORTER_OTLP_ENDPOINT: the exporter appends /v1/traces */
  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<OtlpReceiver> {
    let receiver: OtlpReceiver | undefined;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (req.url !== '/v1/traces' || !String(req.headers['content-type']).startsWith('application/json')) {
          res.writeHead(415).end();
          return;
        }
        receiver?.accept(text);
        res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    receiver = new OtlpReceiver(server, (server.address() as AddressInfo).port);
    return receiver;
  }

  private accept(text: string): void {
    this.raw.push(text);
    const body = JSON.parse(text) as {
      resourceSpans?: { resource?: { attributes?: OtlpAttribute[] }; scopeSpans?: { spans?: (Omit<ReceivedSpan, 'attributes' | 'events' | 'resource'> & { attributes?: OtlpAttribute[]; events?: { name: string; attributes?: OtlpAttribute[] }[] })[] }[] }[];
    };
    for (const resourceSpans of body.resourceSpans ?? []) {
      const resource = flatten(resourceSpans.resource?.attributes);
      for (const scope of resourceSpans.scopeSpans ?? []) {
        for (const span of scope.spans ?? []) {
          this.spans.push({ ...span, attributes: flatten(span.attributes), events: (span.events ?? []).map((e) => ({ name: e.name, attributes: flatten(e.attributes) })), resource });
        }
      }
    }
  }

  /** Waits until a span matching `find` has arrived. */
  async span(find: (span: ReceivedSpan) => boolean, timeoutMs = 10_000): Promise<ReceivedSpan> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.spans.find(find);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no such span among ${this.spans.length}: ${JSON.stringify(this.spans.map((s) => s.name))}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
