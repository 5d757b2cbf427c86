import { z } from 'zod/v4';
import { isHttpUrl } from '../config.js';
import { MAX_SERVICE_ID_LENGTH } from '../token/claims.js';
import { createDummyService, createEchoService } from './local-chat.js';
import { AisNetworkService } from './network.js';
import { AnthropicService } from './anthropic.js';
import { OpenAiCompatibleService } from './openai.js';
import { DEFAULT_DEFAULTS, DEFAULT_MESSAGES_SERVICE, DEFAULT_SERVICE, ServiceRegistry, type ServiceDefaults } from './registry.js';
import { UpstreamGroup, type UpstreamObserver } from './upstream-group.js';
import { DEFAULT_TIMEOUTS, UpstreamOrigin, type Upstream, type UpstreamAuth, type UpstreamTimeouts } from './upstream.js';

/**
 * The services an operator offers: the built-in ones, then the `services` section of the config
 * file adding or replacing them by serviceId. Upstream URLs come from here only.
 *
 * ```json
 * "services": {
 *   "chat:openai.com": { "kind": "openai", "baseUrl": "https://api.openai.com/v1", "models": ["gpt-4o-mini"] },
 *   "chat:ollama":     { "kind": "openai", "baseUrl": "http://127.0.0.1:11434/v1", "defaultModel": "llama3:8b" },
 *   "chat:anthropic.com": { "kind": "anthropic", "baseUrl": "https://api.anthropic.com", "models": ["claude-sonnet-4-5"] },
 *   "aisbreaker:network": { "kind": "aisbreaker", "baseUrl": "https://gateway.example.com" }
 * },
 * "defaults": { "service": "chat:openai.com", "messagesService": "chat:anthropic.com" }
 * ```
 */

const MAX_SERVICES = 256;
const DEFAULT_MAX_CONNECTIONS = 1024;
const DEFAULT_OPENAI_MODEL = 'gpt-4o-mini';
const DEFAULT_ANTHROPIC_MODEL = 'claude-sonnet-4-5';

const httpUrl = z.string().max(2048).refine(isHttpUrl, { error: 'must be an http(s) URL' });
const engineName = z.string().min(1).max(MAX_SERVICE_ID_LENGTH);
const timeoutMs = z.number().int().min(1).max(3_600_000);
const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'must be the name of an environment variable' });
const originFields = {
  baseUrl: httpUrl,
  timeouts: z.object({ connectMs: timeoutMs, firstByteMs: timeoutMs, idleMs: timeoutMs }).partial().strict().optional(),
  maxConnections: z.number().int().min(1).max(65_536).optional(),
};
const MAX_UPSTREAMS = 32;
const MAX_FALLBACKS = 8;
/**
 * One origin (`baseUrl`), or several (`upstreams`) with how to balance, retry and leave out
 * failing ones; `fallbacks`: other services (and models) to try when all of them failed.
 */
const upstreamFields = {
  ...originFields,
  baseUrl: httpUrl.optional(),
  upstreams: z
    .array(z.object({ ...originFields, weight: z.number().int().min(1).max(1000).optional(), operatorKeyEnv: envName.optional(), name: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/).optional() }).strict())
    .min(1, { error: 'must list at least one upstream' })
    .max(MAX_UPSTREAMS, { error: `at most ${MAX_UPSTREAMS} upstreams` })
    .optional(),
  balance: z.enum(['weighted', 'fallback', 'least-busy']).optional(),
  retry: z
    .object({
      attempts: z.number().int().min(1).max(10).optional(),
      on: z.array(z.number().int().min(400).max(599)).max(32).optional(),
      backoffMs: z.number().int().min(0).max(60_000).optional(),
    })
    .strict()
    .optional(),
  circuit: z.object({ failures: z.number().int().min(1).max(1000), cooldownMs: z.number().int().min(1).max(3_600_000) }).strict().optional(),
  fallbacks: z
    .array(z.object({ service: z.string().min(1).max(MAX_SERVICE_ID_LENGTH), model: engineName.optional() }).strict())
    .max(MAX_FALLBACKS, { error: `at most ${MAX_FALLBACKS} fallbacks` })
    .optional(),
};
/** Exactly one of baseUrl and upstreams. */
const oneOrigin = (config: { baseUrl?: string | undefined; upstreams?: unknown[] | undefined }): boolean => (config.baseUrl === undefined) !== (config.upstreams === undefined);
const ONE_ORIGIN = { error: 'needs "baseUrl" or "upstreams" (not both)', path: ['baseUrl'] };

const serviceSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('openai'),
      ...upstreamFields,
      defaultModel: engineName.optional(),
      models: z.array(engineName).max(1024).optional(),
      modelsFromUpstream: z.boolean().optional(),
      /** Azure OpenAI wants the key in an `api-key` header */
      auth: z.enum(['bearer', 'api-key']).optional(),
      /** the environment variable holding the server's own key, for operator API keys */
      operatorKeyEnv: envName.optional(),
      streamUsage: z.boolean().optional(),
    })
    .strict()
    .refine(oneOrigin, ONE_ORIGIN),
  z
    .object({
      kind: z.literal('anthropic'),
      ...upstreamFields,
      defaultModel: engineName.optional(),
      models: z.array(engineName).max(1024).optional(),
      modelsFromUpstream: z.boolean().optional(),
      /** the environment variable holding the server's own key, for operator API keys */
      operatorKeyEnv: envName.optional(),
    })
    .strict()
    .refine(oneOrigin, ONE_ORIGIN),
  z.object({ kind: z.literal('aisbreaker'), ...upstreamFields }).strict().refine(oneOrigin, ONE_ORIGIN),
  z.object({ kind: z.enum(['dummy', 'echo']), streamDelayMs: z.number().int().min(0).max(10_000).optional() }).strict(),
]);

const serviceIdKey = z
  .string()
  .max(MAX_SERVICE_ID_LENGTH)
  .regex(/^[a-z0-9-]+:[^\s/][^\s]*$/i, { error: 'must look like "task:vendor" or "task:vendor/engine"' });

const catalogSchema = z.object({
  services: z.record(serviceIdKey, serviceSchema).optional(),
  defaults: z.object({ service: z.string().max(MAX_SERVICE_ID_LENGTH).optional(), messagesService: z.string().max(MAX_SERVICE_ID_LENGTH).optional() }).strict().optional(),
});

export type ServiceConfig = z.infer<typeof serviceSchema>;

export interface CatalogEnvironment {
  openaiBaseUrl: string;
  openaiApiKey: string | undefined;
  anthropicBaseUrl: string;
  anthropicApiKey: string | undefined;
  /** where `operatorKeyEnv` names are looked up */
  env: Record<string, string | undefined>;
  /** told about the calls, failures, retries and circuits of services with several upstreams */
  observer?: UpstreamObserver;
}

/** The built-in services: chat:dummy, chat:echo, chat:openai.com at OPENAI_BASE_URL and chat:anthropic.com at ANTHROPIC_BASE_URL. */
function builtInServices(environment: CatalogEnvironment): Record<string, ServiceConfig> {
  return {
    'chat:dummy': { kind: 'dummy' },
    'chat:echo': { kind: 'echo' },
    [DEFAULT_SERVICE]: { kind: 'openai', baseUrl: environment.openaiBaseUrl },
    [DEFAULT_MESSAGES_SERVICE]: { kind: 'anthropic', baseUrl: environment.anthropicBaseUrl },
  };
}

/**
 * The server's own key for a service, serving operator keys only: its `operatorKeyEnv`, or the
 * built-in services' variable; with upstreams of their own keys only, an operator API key is served by those.
 */
function operatorKeyOf(serviceId: string, config: { operatorKeyEnv?: string | undefined; upstreams?: { operatorKeyEnv?: string | undefined }[] | undefined }, environment: CatalogEnvironment): string | undefined {
  const builtIn = serviceId === DEFAULT_SERVICE ? environment.openaiApiKey : serviceId === DEFAULT_MESSAGES_SERVICE ? environment.anthropicApiKey : undefined;
  const serviceKey = config.operatorKeyEnv !== undefined ? environment.env[config.operatorKeyEnv] : builtIn;
  return serviceKey || config.upstreams?.map((u) => (u.operatorKeyEnv === undefined ? undefined : environment.env[u.operatorKeyEnv])).find((key) => key) || undefined;
}

/** Validates the `services` and `defaults` sections; one problem per line, naming the serviceId. */
export function parseCatalog(file: Record<string, unknown>): { services: Record<string, ServiceConfig>; defaults: ServiceDefaults } | { problems: string[] } {
  const parsed = catalogSchema.safeParse({ services: file.services, defaults: file.defaults });
  if (!parsed.success) return { problems: parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`) };
  const services = parsed.data.services ?? {};
  if (Object.keys(services).length > MAX_SERVICES) return { problems: [`services: at most ${MAX_SERVICES} services`] };
  const defaults = { ...DEFAULT_DEFAULTS, ...parsed.data.defaults };
  const known = new Set(['chat:dummy', 'chat:echo', DEFAULT_SERVICE, DEFAULT_MESSAGES_SERVICE, ...Object.keys(services)]);
  const problems = (['service', 'messagesService'] as const).filter((field) => !known.has(defaults[field])).map((field) => `defaults.${field}: "${defaults[field]}" is not a service of this server`);
  for (const [serviceId, config] of Object.entries(services)) {
    if (!('fallbacks' in config) || config.fallbacks === undefined) continue;
    config.fallbacks.forEach((fallback, i) => {
      const field = `services.${serviceId}.fallbacks.${i}.service`;
      if (fallback.service === serviceId) problems.push(`${field}: a service cannot be its own fallback`);
      else if (!known.has(fallback.service)) problems.push(`${field}: "${fallback.service}" is not a service of this server`);
    });
  }
  return problems.length > 0 ? { problems } : { services, defaults };
}

/** A registry of the built-in services overlaid with the configured ones (each with its own connection pool). */
export function buildRegistry(configured: Record<string, ServiceConfig>, defaults: ServiceDefaults, environment: CatalogEnvironment): ServiceRegistry {
  const registry = new ServiceRegistry(defaults);
  for (const [serviceId, config] of Object.entries({ ...builtInServices(environment), ...configured })) {
    switch (config.kind) {
      case 'dummy':
        registry.register(serviceId, createDummyService(config.streamDelayMs));
        break;
      case 'echo':
        registry.register(serviceId, createEchoService(config.streamDelayMs));
        break;
      case 'openai': {
        const service = new OpenAiCompatibleService(upstream(serviceId, config, config.auth ?? 'bearer', environment), {
          defaultEngine: config.defaultModel ?? DEFAULT_OPENAI_MODEL,
          models: config.models ?? [],
          modelsFromUpstream: config.modelsFromUpstream ?? false,
          streamUsage: config.streamUsage ?? true,
        });
        registry.register(serviceId, service, operatorKeyOf(serviceId, config, environment), config.fallbacks);
        break;
      }
      case 'anthropic': {
        const service = new AnthropicService(upstream(serviceId, config, 'x-api-key', environment), {
          defaultEngine: config.defaultModel ?? DEFAULT_ANTHROPIC_MODEL,
          models: config.models ?? [],
          modelsFromUpstream: config.modelsFromUpstream ?? false,
        });
        registry.register(serviceId, service, operatorKeyOf(serviceId, config, environment), config.fallbacks);
        break;
      }
      case 'aisbreaker':
        registry.register(serviceId, new AisNetworkService(upstream(serviceId, config, 'bearer', environment, true)), undefined, config.fallbacks);
        break;
    }
  }
  return registry;
}

type UpstreamConfig = Extract<ServiceConfig, { kind: 'openai' | 'anthropic' | 'aisbreaker' }>;

/** A service's upstream: one origin, or a group of them (`upstreams`) balanced, retried and circuit-broken. */
function upstream(serviceId: string, config: UpstreamConfig, auth: UpstreamAuth, environment: CatalogEnvironment, chained = false): Upstream {
  const origin = (fields: { baseUrl: string; timeouts?: Partial<UpstreamTimeouts> | undefined; maxConnections?: number | undefined }): UpstreamOrigin =>
    new UpstreamOrigin({
      serviceId,
      baseUrl: fields.baseUrl,
      timeouts: { ...DEFAULT_TIMEOUTS, ...config.timeouts, ...fields.timeouts },
      maxConnections: fields.maxConnections ?? config.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
      auth,
      chained,
    });
  // the schema lets through exactly one of baseUrl and upstreams
  if (config.upstreams === undefined) return origin({ baseUrl: config.baseUrl as string });
  const members = config.upstreams.map((member, i) => {
    const operatorKey = member.operatorKeyEnv === undefined ? undefined : environment.env[member.operatorKeyEnv];
    return { origin: origin(member), name: member.name ?? String(i), weight: member.weight ?? 1, ...(operatorKey ? { operatorKey } : {}) };
  });
  return new UpstreamGroup({
    serviceId,
    members,
    balance: config.balance ?? 'weighted',
    // by default each upstream is tried once before the call fails
    retry: { attempts: config.retry?.attempts ?? members.length, on: config.retry?.on ?? [], backoffMs: config.retry?.backoffMs ?? DEFAULT_BACKOFF_MS },
    circuit: config.circuit ?? DEFAULT_CIRCUIT,
    budgetMs: config.timeouts?.firstByteMs ?? DEFAULT_TIMEOUTS.firstByteMs,
    observer: environment.observer,
  });
}

const DEFAULT_BACKOFF_MS = 100;
const DEFAULT_CIRCUIT = { failures: 5, cooldownMs: 30_000 };
