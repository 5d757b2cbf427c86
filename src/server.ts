import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createGateway } from './app.js';
import { orExitOnConfigError, type Config } from './config.js';
import { createLogger } from './logger.js';
import { resolveServerSecret } from './server-secret.js';
import { startReport } from './start-report.js';
import { otlpTracesEndpoint } from './tracing/settings.js';

/** config -> gateway -> listen -> graceful shutdown. */
export async function serve(config: Config): Promise<Server> {
  const logger = createLogger(config.logLevel);
  const secret = orExitOnConfigError(() => resolveServerSecret(config, logger));
  const tracesEndpoint = otlpTracesEndpoint(process.env);
  const tracing = tracesEndpoint === undefined ? undefined : (await import('./tracing/otel.js')).startTracing(process.env, tracesEndpoint);
  const gateway = orExitOnConfigError(() => createGateway({ config, secret, logger, tracing }));
  await gateway.ready();

  const server = gateway.app.listen(config.port, config.host);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  }).catch((err: NodeJS.ErrnoException) => {
    console.error(`cannot listen on ${config.host}:${config.port}: ${err.code ?? err.message}`);
    process.exit(2);
  });
  const address = server.address() as AddressInfo;
  const report = startReport(config, address, tracing?.endpoint, gateway.adminRequired());
  logger.info({ address, ...report.fields }, report.message);
  for (const warning of report.warnings) logger.warn(warning);

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: no new connections, waiting for in-flight requests');
    const force = setTimeout(() => {
      logger.warn('grace period over: closing remaining connections');
      server.closeAllConnections();
    }, config.shutdownGraceMs);
    force.unref();
    server.close(() => {
      void gateway
        .close()
        .then(() => tracing?.shutdown())
        .catch((err: unknown) => logger.error({ err }, 'shutdown failed'))
        .finally(() => {
          logger.info('stopped');
          logger.flush(() => process.exit(0));
        });
    });
    server.closeIdleConnections();
    // connections busy now go idle later (their keep-alive would hold the exit until it times
    // out): close each as soon as it is idle, and mark any further response on one as the last
    server.prependListener('request', (_req, res) => res.setHeader('Connection', 'close'));
    setInterval(() => server.closeIdleConnections(), 100).unref();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  return server;
}
