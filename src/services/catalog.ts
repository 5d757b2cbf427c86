import { z } from 'zod/v4';
import { isHttpUrl } from '../config.js';
import { MAX_SERVICE_ID_LENGTH } from '../token/claims.js';
import { createDummyService, createEchoService } from './local-chat.js';
import { AisNetworkService } from './network.js';
import { OpenAiCompatibleService } from './openai.js';
import { DEFAULT_SERVICE, ServiceRegistry } from './registry.js';
import { DEFAULT_TIMEOUTS, Upstream } from './upstream.js';

/**
 * The services an operator offers: the built-in ones, then the `services` section of the config
 * file adding or replacing them by serviceId. Upstream URLs come from here only.
 *
 * ```json
 * "services": {
 *   "chat:openai.com": { "kind": "openai", "baseUrl": "https://api.openai.com/v1", "models": ["gpt-4o-mini"] },
 *   "chat:ollama":     { "kind": "openai", "baseUrl": "http://127.0.0.1:11434/v1", "defaultModel": "llama3:8b" },
 *   "aisbreaker:network": { "kind": "aisbreaker", "baseUrl": "https://gateway.example.com" }
 * },
 * "defaults": { "service": "chat:openai.com" }
 * ```
 */

const MAX_SERVICES = 256;
const DEFAULT_MAX_CONNECTIONS = 1024;
const DEFAULT_OPENAI_MODEL = 'gpt-4o-mini';

const httpUrl = z.string().max(2048).refine(isHttpUrl, { error: 'must be an http(s) URL' });
const engineName = z.string().min(1).max(MAX_SERVICE_ID_LENGTH);
const timeoutMs = z.number().int().min(1).max(3_600_000);
const upstreamFields = {
  baseUrl: httpUrl,
  timeouts: z.object({ connectMs: timeoutMs, firstByteMs: timeoutMs, idleMs: timeoutMs }).partial().strict().optional(),
  maxConnections: z.number().int().min(1).max(65_536).optional(),
};

const serviceSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('openai'),
      ...upstreamFields,
      defaultModel: engineName.optional(),
      models: z.array(engineName).max(1024).optional(),
      /** Azure OpenAI wants the key in an `api-key` header */
      auth: z.enum(['bearer', 'api-key']).optional(),
      /** the environment variable holding the server's own key, for operator API keys */
      operatorKeyEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).optional(),
      streamUsage: z.boolean().optional(),
    })
    .strict(),
  z.object({ kind: z.literal('aisbreaker'), ...upstreamFields }).strict(),
  z.object({ kind: z.enum(['dummy', 'echo']), streamDelayMs: z.number().int().min(0).max(10_000).optional() }).strict(),
]);

const serviceIdKey = z
  .string()
  .max(MAX_SERVICE_ID_LENGTH)
  .regex(/^[a-z0-9-]+:[^\s/][^\s]*$/i, { error: 'must look like "task:vendor" or "task:vendor/engine"' });

const catalogSchema = z.object({
  services: z.record(serviceIdKey, serviceSchema).optional(),
  defaults: z.object({ service: z.string().max(MAX_SERVICE_ID_LENGTH).optional() }).strict().optional(),
});

export type ServiceConfig = z.infer<typeof serviceSchema>;

export interface CatalogEnvironment {
  openaiBaseUrl: string;
  openaiApiKey: string | undefined;
  /** where `operatorKeyEnv` names are looked up */
  env: Record<string, string | undefined>;
}

/** The built-in services: chat:dummy, chat:echo, and chat:openai.com at OPENAI_BASE_URL. */
function builtInServices(environment: CatalogEnvironment): Record<string, ServiceConfig> {
  return {
    'chat:dummy': { kind: 'dummy' },
    'chat:echo': { kind: 'echo' },
    [DEFAULT_SERVICE]: { kind: 'openai', baseUrl: environment.openaiBaseUrl },
  };
}

/** Validates the `services` and `defaults` sections; one problem per line, naming the serviceId. */
export function parseCatalog(file: Record<string, unknown>): { services: Record<string, ServiceConfig>; defaultService: string } | { problems: string[] } {
  const parsed = catalogSchema.safeParse({ services: file.services, defaults: file.defaults });
  if (!parsed.success) return { problems: parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`) };
  const services = parsed.data.services ?? {};
  if (Object.keys(services).length > MAX_SERVICES) return { problems: [`services: at most ${MAX_SERVICES} services`] };
  const defaultService = parsed.data.defaults?.service ?? DEFAULT_SERVICE;
  const known = new Set(['chat:dummy', 'chat:echo', DEFAULT_SERVICE, ...Object.keys(services)]);
  if (!known.has(defaultService)) return { problems: [`defaults.service: "${defaultService}" is not a service of this server`] };
  return { services, defaultService };
}

/** A registry of the built-in services overlaid with the configured ones (each with its own connection pool). */
export function buildRegistry(configured: Record<string, ServiceConfig>, defaultService: string, environment: CatalogEnvironment): ServiceRegistry {
  const registry = new ServiceRegistry(defaultService);
  for (const [serviceId, config] of Object.entries({ ...builtInServices(environment), ...configured })) {
    switch (config.kind) {
      case 'dummy':
        registry.register(serviceId, createDummyService(config.streamDelayMs));
        break;
      case 'echo':
        registry.register(serviceId, createEchoService(config.streamDelayMs));
        break;
      case 'openai': {
        const service = new OpenAiCompatibleService(upstream(serviceId, config, config.auth ?? 'bearer'), {
          defaultEngine: config.defaultModel ?? DEFAULT_OPENAI_MODEL,
          models: config.models ?? [],
          streamUsage: config.streamUsage ?? true,
        });
        const operatorKey = config.operatorKeyEnv !== undefined ? environment.env[config.operatorKeyEnv] : serviceId === DEFAULT_SERVICE ? environment.openaiApiKey : undefined;
        registry.register(serviceId, service, operatorKey || undefined);
        break;
      }
      case 'aisbreaker':
        registry.register(serviceId, new AisNetworkService(upstream(serviceId, config, 'bearer', true)));
        break;
    }
  }
  return registry;
}

function upstream(serviceId: string, config: { baseUrl: string; timeouts?: Partial<typeof DEFAULT_TIMEOUTS>; maxConnections?: number }, auth: 'bearer' | 'api-key', chained = false): Upstream {
  return new Upstream({
    serviceId,
    baseUrl: config.baseUrl,
    timeouts: { ...DEFAULT_TIMEOUTS, ...config.timeouts },
    maxConnections: config.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
    auth,
    chained,
  });
}
