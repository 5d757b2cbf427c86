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

/**
 * Services by serviceId prefix ("task:vendor" or "task:vendor/engine"); the longest registered
 * prefix that matches the requested id on a "/" boundary wins, as in AIsBreaker.
 */
export class ServiceRegistry {
  private readonly services = new Map<string, RegisteredService>();

  constructor(readonly defaultService = DEFAULT_SERVICE) {}

  register(prefix: string, service: AisService, operatorSecret?: string, fallbacks: readonly Fallback[] = []): this {
    this.services.set(prefix, { prefix, service, operatorSecret, fallbacks });
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
    const bareModel = best.prefix === this.defaultService && named !== undefined && !this.looksLikeServiceId(named) ? named : undefined;
    return { ...best, serviceId, engine, ...(bareModel !== undefined ? { bareModel } : {}) };
  }

  /**
   * An OpenAI `model`: a serviceId ("chat:openai.com/gpt-4o-mini", "chat:dummy") or a bare model
   * name of the default service ("gpt-4o-mini", "meta-llama/Llama-3-8B"), passed on unchanged.
   */
  resolveModel(model: string): ServiceTarget {
    if (this.looksLikeServiceId(model)) return this.resolve(model, 'model');
    const target = this.resolve(this.defaultService, 'model');
    return { ...target, serviceId: `${target.prefix}/${model}`, engine: model, bareModel: model };
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
