import express, { type Express } from 'express';
import type { Logger } from 'pino';
import { authenticate } from './auth/authenticate.js';
import { systemClock, type Clock } from './clock.js';
import type { Config } from './config.js';
import { errorHandler, notFound, requestContext } from './request-context.js';
import { oauthRoutes } from './routes/oauth.js';
import { processRoutes } from './routes/process.js';
import { systemRoutes } from './routes/system.js';
import { createDummyService, createEchoService } from './services/local-chat.js';
import { ServiceRegistry } from './services/registry.js';
import { Keyring } from './token/keyring.js';
import { TokenVerifier } from './token/verifier.js';

export interface GatewayOptions {
  config: Config;
  /** the resolved current server secret (see server-secret.ts) */
  secret: string;
  logger: Logger;
  clock?: Clock;
}

export interface Gateway {
  app: Express;
  keyring: Keyring;
  close(): Promise<void>;
}

/** Builds the whole gateway: its parts, then the Express app in request order. */
export function createGateway(options: GatewayOptions): Gateway {
  const { config, logger } = options;
  const clock = options.clock ?? systemClock;
  const keyring = new Keyring(options.secret, config.previousSecrets, config.legacyKeyphrases);
  const verifier = new TokenVerifier(keyring, clock);
  const registry = new ServiceRegistry().register('chat:dummy', createDummyService()).register('chat:echo', createEchoService());

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy);

  app.use(requestContext(logger));
  app.use(systemRoutes(() => true));
  app.use(oauthRoutes({ keyring, adminKey: config.adminKey, maxTokenLifetimeMs: config.maxTokenLifetimeMs, clock, logger }));
  const guard = [authenticate(verifier)];
  app.use(processRoutes({ guard, registry }));
  app.use(notFound);
  app.use(errorHandler);

  return {
    app,
    keyring,
    close: async () => {},
  };
}
