import express, { type Express, type RequestHandler } from 'express';
import type { Logger } from 'pino';
import { AdminAuthority } from './auth/admin.js';
import { authenticate } from './auth/authenticate.js';
import { requireScope } from './auth/principal.js';
import { lookUpToken } from './quota/look.js';
import type { TokenClaims } from './token/claims.js';
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
import { KeyDirectory, expiringKeys, keyChanges } from './keys/directory.js';
import { audit } from './audit.js';
import { parseKeysSection } from './config-sections.js';
import { Metrics } from './metrics.js';
import { docsRoutes } from './routes/docs.js';
import { deploymentRoutes } from './routes/deployments.js';
import { lifecycleRoutes } from './routes/token-lifecycle.js';
import { processRoutes } from './routes/process.js';
import { systemRoutes } from './routes/system.js';
import { consoleRoutes } from './routes/console.js';
import { buildRegistry, parseCatalog } from './services/catalog.js';
import type { UpstreamObserver } from './services/upstream-group.js';
import { NetworkTargets } from './services/network-targets.js';
import { DEFAULT_DEFAULTS, type ServiceRegistry } from './services/registry.js';
import { openAiRoutes } from './routes/openai.js';
import { anthropicRoutes } from './routes/anthropic.js';
import { openAiApiRoutes } from './routes/openai-apis.js';
import { Keyring } from './token/keyring.js';
import { TokenVerifier } from './token/verifier.js';
import type { Tracing } from './tracing/otel.js';

/** How often operator keys about to expire are warned of again. */
const EXPIRY_WARNING_INTERVAL_MS = 6 * 3600 * 1000;

/** How long replaced services stay open after a config reload, for requests that already picked them. */
const RETIRED_SERVICES_GRACE_MS = 30_000;

export interface GatewayOptions {
  config: Config;
  /** the resolved current server secret (see server-secret.ts) */
  secret: string;
  logger: Logger;
  clock?: Clock;
  metrics?: Metrics;
  /** OpenTelemetry, when configured: a span per served request */
  tracing?: Tracing;
}

export interface Gateway {
  app: Express;
  keyring: Keyring;
  quotaStore: QuotaStore;
  /** whether admin acts need an admin credential (the admin key, or an operator key with the admin scope) */
  adminRequired(): boolean;
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
  let keysLoaded = false;
  // "notification before expiration": a warning per key about to expire, at each load and every few hours
  const warnOfExpiringKeys = (): void => {
    for (const { key, expiresAt, expired } of expiringKeys(operatorKeys, clock(), config.expiryNoticeMs)) {
      logger.warn({ key, expiresAt }, expired ? 'operator key has expired: it is refused with EXPIRED_API_KEY' : 'operator key expires soon: rotate it');
    }
  };
  const keysSection: ConfigSection = (file) => {
    const parsed = parseKeysSection(file);
    if ('problems' in parsed) return parsed;
    return {
      apply: () => {
        const changes = keyChanges(operatorKeys, parsed.directory);
        if (keysLoaded && changes.added.length + changes.removed.length + changes.changed.length > 0) audit(logger, 'config.keys_changed', changes);
        operatorKeys = parsed.directory;
        keysLoaded = true;
        warnOfExpiringKeys();
      },
      warnings: parsed.directory.warnings,
    };
  };
  // the server's own upstream secrets (OPENAI_API_KEY, ...) serve operator keys only, never minted tokens
  const observer: UpstreamObserver = {
    attempt: (service, upstream) => metrics.upstreamCalls.inc({ service, upstream }),
    failed: (service, upstream, kind) => metrics.upstreamFailures.inc({ service, upstream, kind }),
    retried: (service) => metrics.upstreamRetries.inc({ service }),
    circuit: (service, upstream, open) => {
      metrics.upstreamCircuitOpen.set({ service, upstream }, open ? 1 : 0);
      if (open) logger.warn({ service, upstream }, 'upstream taken out of rotation after repeated failures (circuit open)');
      else logger.info({ service, upstream }, 'upstream back in rotation (circuit closed)');
    },
  };
  const catalogEnvironment = { openaiBaseUrl: config.openaiBaseUrl, openaiApiKey: config.openaiApiKey, anthropicBaseUrl: config.anthropicBaseUrl, anthropicApiKey: config.anthropicApiKey, env: process.env, observer };
  let registry = buildRegistry({}, DEFAULT_DEFAULTS, catalogEnvironment);
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
        registry = buildRegistry(parsed.services, parsed.defaults, catalogEnvironment);
      },
    };
  };
  const configFile = config.configPath === undefined ? undefined : new ReloadingConfigFile(config.configPath, [servicesSection, keysSection], logger);
  configFile?.load();
  configFile?.watch();
  const expiryWarnings = configFile === undefined ? undefined : setInterval(warnOfExpiringKeys, EXPIRY_WARNING_INTERVAL_MS).unref();
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
  const authentication = { verifier, operatorKeys: () => operatorKeys, failureLimits: authFailureLimits, hostOf, clock, expiryNoticeMs: config.expiryNoticeMs };
  const authenticateToken = authenticate(authentication);
  // open access (AISBREAKER_OPEN_ACCESS) serves the AI routes only, never the token endpoints
  const authenticateCaller = config.openAccess ? authenticate({ ...authentication, openAccess: true }) : authenticateToken;
  const quotas = new QuotaEnforcer(quota.store, clock, metrics, openAccessQuotas(config.openAccessClientLimits, config.openAccessGlobalLimits));
  const guard = [...(options.tracing ? [options.tracing.middleware()] : []), authenticateCaller, requireScope('inference', 'calling an AI service'), quotas.guard()];
  const isRevoked = async (claims: TokenClaims): Promise<boolean> => (await lookUpToken(quota.store, claims, 'admin', clock())).outcome === 'revoked';
  const admin = new AdminAuthority({ adminKey: config.adminKey, operatorKeys: () => operatorKeys, verifier, hostOf, isRevoked, clock, failureLimits: authFailureLimits });
  const serviceCalls = { registry: () => registry, admitModel: quotas.admitModel.bind(quotas), metrics };
  const networkTargets = new NetworkTargets(config.networkUrls);
  app.use(openAiRoutes(guard, serviceCalls));
  app.use(openAiApiRoutes(guard, serviceCalls));
  app.use(anthropicRoutes(guard, serviceCalls));
  app.use(processRoutes(guard, { ...serviceCalls, networkTargets }));
  const tokenDeps = { metrics, admin, maxTokenLifetimeMs: config.maxTokenLifetimeMs, clock, quotaStore: quota.store, authenticate: authenticateToken };
  app.use(oauthRoutes({ ...tokenDeps, keyring, logger, mintLimits, hostOf }));
  app.use(lifecycleRoutes({ ...tokenDeps, verifier, expiryNoticeMs: config.expiryNoticeMs }));
  const readAnalytics = (action: string): RequestHandler[] => [authenticateToken, requireScope('analytics:read', action)];
  app.use(deploymentRoutes({ authenticate: readAnalytics('reading limits'), quotaStore: quota.store, clock, registry: () => registry }));
  app.get('/metrics', ...(config.metricsAuth ? readAnalytics('reading /metrics') : []), metrics.handler());
  app.use(systemRoutes(quota.isServing));
  app.use(docsRoutes());
  app.use(consoleRoutes({ serviceIds: () => registry.ids(), openServiceIds: () => registry.entries().filter((e) => !e.service.needsSecret).map((e) => e.prefix), adminKeyRequired: config.adminKey !== undefined, maxTokenLifetimeMs: config.maxTokenLifetimeMs }));
  app.use(notFound);
  app.use(errorHandler);

  return {
    app,
    keyring,
    quotaStore: quota.store,
    adminRequired: () => admin.required,
    ready: async (timeoutMs = 2000) => {
      if (redis) await waitUntilReady(redis, timeoutMs);
    },
    close: async () => {
      configFile?.close();
      clearInterval(expiryWarnings);
      await Promise.all([registry, ...retired, networkTargets].map((r) => r.close()));
      retired.clear();
      await quota.close();
      if (redis) await redis.quit().catch(() => redis.disconnect());
    },
  };
}
