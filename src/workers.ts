import cluster from 'node:cluster';
import { orExitOnConfigError, type Config } from './config.js';
import { createLogger } from './logger.js';
import { resolveServerSecret } from './server-secret.js';

/** A worker that dies sooner than this after its start is not started again: it would only die again (a port taken, a bad setting). */
const MIN_WORKER_LIFETIME_MS = 5_000;

/**
 * WORKERS=N: the primary process of node:cluster. It starts N workers, each a whole gateway
 * (server.ts), which share the listening port; the quota store is Redis (config refuses N > 1
 * without it), so limits hold exactly across them as across instances. A worker that dies is
 * replaced; SIGTERM/SIGINT reach every worker, which drains its requests, and the primary exits
 * once all have.
 */
export function superviseWorkers(config: Config): void {
  const logger = createLogger(config.logLevel);
  // a generated secret is created here, once, before the workers read it (they would race to create it)
  orExitOnConfigError(() => resolveServerSecret(config, logger));
  const startedAt = new Map<number, number>();
  const fork = (): void => {
    const worker = cluster.fork();
    startedAt.set(worker.id, Date.now());
  };
  let stopping = false;
  cluster.on('exit', (worker, code, signal) => {
    const lived = Date.now() - (startedAt.get(worker.id) ?? 0);
    startedAt.delete(worker.id);
    if (stopping) {
      if (startedAt.size === 0) logger.flush(() => process.exit());
      return;
    }
    if (lived < MIN_WORKER_LIFETIME_MS) {
      logger.fatal({ worker: worker.process.pid, code, signal }, 'a worker stopped right after its start: stopping all');
      stop('worker failure');
      process.exitCode = typeof code === 'number' && code !== 0 ? code : 1;
      return;
    }
    logger.error({ worker: worker.process.pid, code, signal }, 'a worker stopped: starting another');
    fork();
  });
  const stop = (reason: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ reason, workers: startedAt.size }, 'stopping the workers');
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
    if (startedAt.size === 0) process.exit();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  logger.info({ workers: config.workers, pid: process.pid }, `starting ${config.workers} worker processes on one port`);
  for (let i = 0; i < config.workers; i++) fork();
}
