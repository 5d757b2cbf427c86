import { ApiError } from '../errors.js';
import type { AisService } from './types.js';

/**
 * Services by serviceId prefix ("task:vendor" or "task:vendor/engine"); the longest registered
 * prefix that matches the requested id on a "/" boundary wins, as in AIsBreaker.
 */
export class ServiceRegistry {
  private readonly services = new Map<string, AisService>();

  register(serviceIdPrefix: string, service: AisService): this {
    this.services.set(serviceIdPrefix, service);
    return this;
  }

  ids(): string[] {
    return [...this.services.keys()].sort();
  }

  resolve(serviceId: string): AisService {
    let best: string | undefined;
    for (const prefix of this.services.keys()) {
      const matches = serviceId === prefix || serviceId.startsWith(prefix + '/');
      if (matches && (best === undefined || prefix.length > best.length)) best = prefix;
    }
    const service = best === undefined ? undefined : this.services.get(best);
    if (!service) {
      throw new ApiError(404, 'UNKNOWN_SERVICE', `unknown service "${serviceId}"; this server offers: ${this.ids().join(', ')}`, {
        serviceId,
      });
    }
    return service;
  }
}
