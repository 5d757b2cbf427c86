import { Agent, createServer, request, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Headers that belong to one connection, not to the request: a proxy does not pass them on. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'upgrade']);

/**
 * A tiny reverse proxy that sends each request (not each connection) to the next of its targets in
 * turn, as a load balancer does. It passes the original Host and appends the address of the client
 * it saw to X-Forwarded-For, keeping what the client sent before it (which a gateway must not
 * believe beyond its TRUST_PROXY setting). Responses, streams included, are piped through unbuffered.
 */
export class RoundRobinProxy {
  /** requests sent to each target, by index */
  readonly served: number[];
  private next = 0;
  private readonly agent = new Agent({ keepAlive: true });

  private constructor(
    private readonly server: Server,
    private readonly targets: URL[],
    readonly url: string,
  ) {
    this.served = targets.map(() => 0);
  }

  static async start(targets: string[]): Promise<RoundRobinProxy> {
    if (targets.length === 0) throw new Error('a proxy needs at least one target');
    let proxy: RoundRobinProxy | undefined;
    const server = createServer((req, res) => proxy?.forward(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    proxy = new RoundRobinProxy(
      server,
      targets.map((t) => new URL(t)),
      `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    );
    return proxy;
  }

  private forward(req: IncomingMessage, res: ServerResponse): void {
    const index = this.next++ % this.targets.length;
    const target = this.targets[index] as URL;
    this.served[index] = (this.served[index] ?? 0) + 1;

    const headers: IncomingHttpHeaders = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (!HOP_BY_HOP.has(name)) headers[name] = value;
    }
    const seen = req.socket.remoteAddress ?? '';
    const before = req.headers['x-forwarded-for'];
    headers['x-forwarded-for'] = before ? `${Array.isArray(before) ? before.join(', ') : before}, ${seen}` : seen;

    const upstream = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent: this.agent }, (answer) => {
      const answerHeaders: IncomingHttpHeaders = {};
      for (const [name, value] of Object.entries(answer.headers)) {
        if (!HOP_BY_HOP.has(name)) answerHeaders[name] = value;
      }
      res.writeHead(answer.statusCode ?? 502, answerHeaders);
      res.flushHeaders();
      answer.pipe(res);
      // the client went away: stop the upstream too
      res.once('close', () => {
        if (!res.writableFinished) answer.destroy();
      });
    });
    upstream.once('error', (err) => {
      if (res.headersSent) {
        res.destroy(err);
        return;
      }
      res.writeHead(502, { 'Content-Type': 'application/json' }).end(JSON.stringify({ proxyError: err.message }));
    });
    req.pipe(upstream);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.agent.destroy();
  }
}
