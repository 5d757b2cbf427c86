import { ApiError, invalidRequest } from '../errors.js';
import type { AisService } from './types.js';

export interface RegisteredService {
  /** the serviceId prefix it serves, e.g. "chat:openai.com" */
  prefix: string;
  service: AisService;
  /** the server's own secret for it: used for operator API keys only, never for minted tokens */
  operatorSecret: string | undefined;
  /** where a call goes when every upstream of this service failed, in order */
  fallbacks: readonly Fallback[];
}

/** Another service (and its model) that may answer when this one cannot. */
export interface Fallback {
  service: string;
  model?: string | undefined;
}

/** A request's service: what serves it, under which full serviceId, with which engine. */
export interface ServiceTarget extends RegisteredService {
  /** the full serviceId: what token secrets and operator-key limits are matched against */
  serviceId: string;
  engine: string;
  /** the model as a bare name: set for a model of the default service ("gpt-4o-mini") */
  bareModel?: string;
}

/** The service a bare OpenAI model name ("gpt-4o-mini") belongs to, unless configured otherwise. */
export const DEFAULT_SERVICE = 'chat:openai.com';
/** The service a bare model name on /v1/messages ("claude-sonnet-4-5") belongs to, unless configured otherwise. */
export const DEFAULT_MESSAGES_SERVICE = 'chat:anthropic.com';

/** Where bare model names go that no service lists: per API family (`defaults` of the config file). */
export interface ServiceDefaults {
  /** the OpenAI routes */
  service: string;
  /** /v1/messages */
  messagesService: string;
}

export const DEFAULT_DEFAULTS: ServiceDefaults = { service: DEFAULT_SERVICE, messagesService: DEFAULT_MESSAGES_SERVICE };

/** Which API family a request came in by: its bare model names default differently. */
export type ApiFamily = 'openai' | 'messages';

/**
 * Services by serviceId prefix ("task:vendor" or "task:vendor/engine"); the longest registered
 * prefix that matches the requested id on a "/" boundary wins, as in AIsBreaker.
 */
export class ServiceRegistry {
  private readonly services = new Map<string, RegisteredService>();
  /** bare model name -> the first service (by serviceId) whose `models` lists it; built on first use */
  private listedModels: Map<string, RegisteredService> | undefined;

  constructor(readonly defaults: ServiceDefaults = DEFAULT_DEFAULTS) {}

  register(prefix: string, service: AisService, operatorSecret?: string, fallbacks: readonly Fallback[] = []): this {
    this.services.set(prefix, { prefix, service, operatorSecret, fallbacks });
    this.listedModels = undefined;
    return this;
  }

  ids(): string[] {
    return [...this.services.keys()].sort();
  }

  entries(): RegisteredService[] {
    return this.ids().map((id) => this.services.get(id) as RegisteredService);
  }

  /**
   * `task:vendor[/engine]` -> its service; 404 UNKNOWN_SERVICE naming what this server offers.
   * `field` names the request field in a 400 (`service.serviceId`, or `model` on the OpenAI API).
   */
  resolve(serviceId: string, field = 'service.serviceId'): ServiceTarget {
    let best: RegisteredService | undefined;
    for (const entry of this.services.values()) {
      const matches = serviceId === entry.prefix || serviceId.startsWith(entry.prefix + '/');
      if (matches && (best === undefined || entry.prefix.length > best.prefix.length)) best = entry;
    }
    if (!best) {
      // the first words are AIsBreaker's own, which its clients' users match on
      throw new ApiError(404, 'UNKNOWN_SERVICE', `No factory registered for serviceId '${serviceId}': unknown service; this server offers: ${this.ids().join(', ')}`, { serviceId });
    }
    const named = serviceId.length > best.prefix.length ? serviceId.slice(best.prefix.length + 1) : undefined;
    const engine = named ?? best.service.defaultEngine;
    if (engine === undefined || engine === '') {
      throw invalidRequest(field, `"${best.prefix}" needs what to use after it: "${best.prefix}/<${best.service.defaultEngine === undefined ? 'serviceId' : 'model'}>"`);
    }
    // "chat:openai.com/chat:dummy" is no model of the default service that a bare "chat:dummy" could name
    const bareModel = best.prefix === this.defaults.service && named !== undefined && !this.looksLikeServiceId(named) ? named : undefined;
    return { ...best, serviceId, engine, ...(bareModel !== undefined ? { bareModel } : {}) };
  }

  /**
   * A request's `model`: a serviceId ("chat:openai.com/gpt-4o-mini", "chat:dummy") or a bare model
   * name ("gpt-4o-mini", "meta-llama/Llama-3-8B"), passed on unchanged to the service whose
   * `models` lists it, else to the default service of the request's API family.
   */
  resolveModel(model: string, family: ApiFamily = 'openai'): ServiceTarget {
    if (this.looksLikeServiceId(model)) return this.resolve(model, 'model');
    this.listedModels ??= this.indexListedModels();
    const prefix = this.listedModels.get(model)?.prefix ?? (family === 'messages' ? this.defaults.messagesService : this.defaults.service);
    const target = this.resolve(prefix, 'model');
    // a role's bare model name grants that model of the default service only
    return { ...target, serviceId: `${target.prefix}/${model}`, engine: model, ...(target.prefix === this.defaults.service ? { bareModel: model } : {}) };
  }

  private indexListedModels(): Map<string, RegisteredService> {
    const index = new Map<string, RegisteredService>();
    for (const entry of this.entries()) for (const model of entry.service.models()) if (!index.has(model)) index.set(model, entry);
    return index;
  }

  /**
   * serviceIds are "task:vendor..." with a task this server has ("chat:", "aisbreaker:"); a colon
   * elsewhere belongs to a model name (Ollama's "llama3:8b").
   */
  private looksLikeServiceId(model: string): boolean {
    const colon = model.indexOf(':');
    const slash = model.indexOf('/');
    if (colon <= 0 || (slash >= 0 && slash < colon)) return false;
    const task = model.slice(0, colon + 1);
    for (const prefix of this.services.keys()) if (prefix.startsWith(task)) return true;
    return false;
  }

  /** Lets in-flight calls finish, then releases every upstream connection. */
  async close(): Promise<void> {
    await Promise.all([...this.services.values()].map((entry) => entry.service.close()));
  }
}
