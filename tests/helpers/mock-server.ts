import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request as a mock upstream received it: its body whole, and as JSON when it is JSON ({} otherwise). */
export interface MockRequest {
  req: IncomingMessage;
  res: ServerResponse;
  text: string;
  json: Record<string, unknown>;
}

export interface MockServer {
  port: number;
  close(): Promise<void>;
}

/** A loopback HTTP server for a mock upstream; `handle` gets each request once its body is in. */
export async function startMockServer(handle: (request: MockRequest) => void): Promise<MockServer> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let json: Record<string, unknown> = {};
      try {
        json = JSON.parse(text) as Record<string, unknown>;
      } catch {
        // recorded as received; the mock answers it like any request
      }
      handle({ req, res, text, json });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
