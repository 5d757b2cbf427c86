import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Recorder {
  url: string;
  hits: { method: string; path: string; authorization: string | undefined; body: string }[];
  close(): Promise<void>;
}

/**
 * A server that records every request it gets (method, path, Authorization, body) and answers as
 * a gateway would (a ResponseFinal): where a secret must never arrive, or only the right one.
 */
export async function startRecorder(): Promise<Recorder> {
  const hits: Recorder['hits'] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (c: string) => (body += c));
    req.on('end', () => {
      hits.push({ method: req.method ?? '', path: req.url ?? '', authorization: req.headers.authorization, body });
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ outputs: [{ text: { index: 0, role: 'assistant', content: 'recorded' } }], usage: { engine: { serviceId: 'x' }, totalMilliseconds: 1 } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
