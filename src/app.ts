import express, { type Express } from 'express';
import type { Logger } from 'pino';
import { authenticate } from './auth/authenticate.js';
import { requestHost } from './auth/request-host.js';
import { systemClock, type Clock } from './clock.js';
import type { Config } from './config.js';
import { ApiRateLimits } from './quota/api-limits.js';
import { createQuotaBackend } from './quota/create-store.js';
import { QuotaEnforcer } from './quota/guard.js';
import { openAccessQuotas } from './quota/plan.js';
import { connectRedis, waitUntilReady } from './quota/redis-connection.js';
import type { QuotaStore } from './quota/store.js';
import { errorHandler, notFound, requestContext } from './request-context.js';
import { oauthRoutes } from './routes/oauth.js';
import { ReloadingConfigFile, type ConfigSection } from './config-reload.js';
import { KeyDirectory } from './keys/directory.js';
import { parseKeysSection } from './config-sections.js';
import { Metrics } from './metrics.js';
import { docsRoutes } from './routes/docs.js';
import { deploymentRoutes } from './routes/deployments.js';
import { lifecycleRoutes } from './routes/token-lifecycle.js';
import { processRoutes } from './routes/process.js';
import { systemRoutes } from './routes/system.js';
import { consoleRoutes } from './routes/console.js';
import { buildRegistry, parseCatalog } from './services/catalog.js';
import { NetworkTargets } from './services/network-targets.js';
import { DEFAULT_SERVICE, type ServiceRegistry } from './services/registry.js';
import { openAiRoutes } from './routes/openai.js';
import { Keyring } from './token/keyring.js';
import { TokenVerifier } from './token/verifier.js';

/** How long replaced services stay open after a config reload, for requests that already picked them. */
const RETIRED_SERVICES_GRACE_MS = 30_000;

export interface GatewayOptions {
  config: Config;
  /** the resolved current server secret (see server-secret.ts) */
  secret: string;
  logger: Logger;
  clock?: Clock;
  metrics?: Metrics;
}

export interface Gateway {
  app: Express;
  keyring: Keyring;
  quotaStore: QuotaStore;
  /** resolves once the quota store can be used (Redis connected, or given up waiting for it) */
  ready(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Builds the whole gateway: its parts, then the Express app in request order. */
export function createGateway(options: GatewayOptions): Gateway {
  const { config, logger } = options;
  const clock = options.clock ?? systemClock;
  const keyring = new Keyring(options.secret, config.previousSecrets, config.legacyKeyphrases);
  const verifier = new TokenVerifier(keyring, clock);
  const metrics = options.metrics ?? new Metrics({ processMetrics: true });
  let operatorKeys = KeyDirectory.empty();
  const keysSection: ConfigSection = (file) => {
    const parsed = parseKeysSection(file);
    if ('problems' in parsed) return parsed;
    return { apply: () => (operatorKeys = parsed.directory), warnings: parsed.directory.warnings };
  };
  // the server's own upstream secrets (OPENAI_API_KEY, ...) serve operator keys only, never minted tokens
  const catalogEnvironment = { openaiBaseUrl: config.openaiBaseUrl, openaiApiKey: config.openaiApiKey, env: process.env };
  let registry = buildRegistry({}, DEFAULT_SERVICE, catalogEnvironment);
  let appliedCatalog = '';
  // requests that picked replaced services may still be passing their quota checks: their pools
  // close later (each also lets its in-flight calls finish first), or at shutdown
  const retired = new Set<ServiceRegistry>();
  const retire = (previous: ServiceRegistry): void => {
    retired.add(previous);
    setTimeout(() => {
      if (retired.delete(previous)) previous.close().catch((err: unknown) => logger.error({ err }, 'closing replaced services failed'));
    }, RETIRED_SERVICES_GRACE_MS).unref();
  };
  const servicesSection: ConfigSection = (file) => {
    const parsed = parseCatalog(file);
    if ('problems' in parsed) return parsed;
    return {
      apply: () => {
        // an edit elsewhere in the file (keys, roles) keeps the services and their warm connections
        const catalog = JSON.stringify(parsed);
        if (catalog === appliedCatalog) return;
        appliedCatalog = catalog;
        retire(registry);
        registry = buildRegistry(parsed.services, parsed.defaultService, catalogEnvironment);
      },
    };
  };
  const configFile = config.configPath === undefined ? undefined : new ReloadingConfigFile(config.configPath, [servicesSection, keysSection], logger);
  configFile?.load();
  configFile?.watch();
  const redis = connectRedis(config, logger);
  const quota = createQuotaBackend(config, redis, logger, clock, metrics);
  const mintLimits = new ApiRateLimits('mint', config.mintLimits, redis);
  const authFailureLimits = new ApiRateLimits('auth-failure', config.authFailureLimits, redis);

  const app = express();
  app.disable('x-powered-by');
  // responses are answers to POSTs or change with every call: hashing them for an ETag is waste
  app.set('etag', false);
  app.set('trust proxy', config.trustProxy);

  app.use(requestContext(logger));
  app.use(metrics.middleware());
  // the serving routes first: nearly all traffic is theirs, and every router passed costs a match.
  // Each checks who is calling, then whether they are within their quotas.
  const hostOf = requestHost(config.trustForwardedHost);
  const authenticateToken = authenticate({ verifier, operatorKeys: () => operatorKeys, failureLimits: authFailureLimits, hostOf });
  // open access (AISBREAKER_OPEN_ACCESS) serves the AI routes only, never the token endpoints
  const authenticateCaller = config.openAccess ? authenticate({ verifier, operatorKeys: () => operatorKeys, failureLimits: authFailureLimits, hostOf, openAccess: true }) : authenticateToken;
  const quotas = new QuotaEnforcer(quota.store, clock, metrics, openAccessQuotas(config.openAccessClientLimits, config.openAccessGlobalLimits));
  const guard = [authenticateCaller, quotas.guard()];
  const serviceCalls = { registry: () => registry, admitModel: quotas.admitModel.bind(quotas), metrics };
  const networkTargets = new NetworkTargets(config.networkUrls);
  app.use(openAiRoutes(guard, serviceCalls));
  app.use(processRoutes(guard, { ...serviceCalls, networkTargets }));
  const tokenDeps = { metrics, adminKey: config.adminKey, maxTokenLifetimeMs: config.maxTokenLifetimeMs, clock, quotaStore: quota.store, authenticate: authenticateToken };
  app.use(oauthRoutes({ ...tokenDeps, keyring, logger, mintLimits, hostOf }));
  app.use(lifecycleRoutes({ ...tokenDeps, verifier, authFailureLimits }));
  app.use(deploymentRoutes({ authenticate: authenticateToken, quotaStore: quota.store, clock, registry: () => registry }));
  app.get('/metrics', metrics.handler());
  app.use(systemRoutes(quota.isServing));
  app.use(docsRoutes());
  app.use(consoleRoutes({ serviceIds: () => registry.ids(), adminKeyRequired: config.adminKey !== undefined, maxTokenLifetimeMs: config.maxTokenLifetimeMs }));
  app.use(notFound);
  app.use(errorHandler);

  return {
    app,
    keyring,
    quotaStore: quota.store,
    ready: async (timeoutMs = 2000) => {
      if (redis) await waitUntilReady(redis, timeoutMs);
    },
    close: async () => {
      configFile?.close();
      await Promise.all([registry, ...retired, networkTargets].map((r) => r.close()));
      retired.clear();
      await quota.close();
      if (redis) await redis.quit().catch(() => redis.disconnect());
    },
  };
}
