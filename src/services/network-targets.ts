import { invalidRequest } from '../errors.js';
import { AisNetworkService } from './network.js';
import { DEFAULT_TIMEOUTS, UpstreamOrigin } from './upstream.js';

export const NETWORK_SERVICE_ID = 'aisbreaker:network';
const MAX_URL_LENGTH = 2048;
/** distinct caller-named gateways kept with warm connections; the least recently used is closed */
const MAX_TARGETS = 32;
const MAX_CONNECTIONS_PER_TARGET = 64;

/**
 * The gateways a request may name itself as `service.url` of aisbreaker:network: only those under
 * a prefix of AISBREAKER_NETWORK_URLS (or any, with "*"). Such a target is sent only the caller's
 * own credential (see prepareServiceCall), never a secret vaulted in a token or an operator key.
 */
export class NetworkTargets {
  private readonly services = new Map<string, AisNetworkService>();

  /** `allowed`: normalized prefixes (origin + path without trailing slash) or ["*"]; empty: none */
  constructor(private readonly allowed: string[]) {}

  /** The service for a URL the caller named; 400 naming `field` (and the setting) when it is not allowed. */
  serviceFor(url: string, field: string): AisNetworkService {
    const base = this.allowedBase(url, field);
    let service = this.services.get(base);
    if (service) {
      // most recently used last: eviction takes the first
      this.services.delete(base);
    } else {
      service = new AisNetworkService(
        new UpstreamOrigin({
          serviceId: NETWORK_SERVICE_ID,
          baseUrl: base,
          timeouts: DEFAULT_TIMEOUTS,
          maxConnections: MAX_CONNECTIONS_PER_TARGET,
          auth: 'bearer',
          chained: true,
          callerNamedHost: new URL(base).host,
        }),
      );
      this.evictBeyond(MAX_TARGETS - 1);
    }
    this.services.set(base, service);
    return service;
  }

  /** Lets in-flight calls finish, then closes every connection. */
  async close(): Promise<void> {
    const all = [...this.services.values()];
    this.services.clear();
    await Promise.all(all.map((s) => s.close()));
  }

  private evictBeyond(size: number): void {
    for (const [base, service] of this.services) {
      if (this.services.size <= size) break;
      this.services.delete(base);
      // calls still running on it finish first: undici's close waits for them
      void service.close().catch(() => undefined);
    }
  }

  private allowedBase(text: string, field: string): string {
    if (this.allowed.length === 0) {
      throw invalidRequest(field, 'not accepted: this server sends requests only to upstreams of its own configuration; its operator can allow gateways a request may name in AISBREAKER_NETWORK_URLS');
    }
    if (text.length > MAX_URL_LENGTH) throw invalidRequest(field, `longer than ${MAX_URL_LENGTH} chars`);
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw invalidRequest(field, 'must be an http(s) URL such as "https://gateway.example.com"');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalidRequest(field, 'must be an http(s) URL such as "https://gateway.example.com"');
    if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') throw invalidRequest(field, 'must not carry credentials, a query or a fragment');
    const base = url.origin + url.pathname.replace(/\/+$/, '');
    if (!this.allowed.some((prefix) => prefix === '*' || isUnderPrefix(base, prefix))) {
      throw invalidRequest(field, `"${url.origin}" is not among the gateways this server may forward to (AISBREAKER_NETWORK_URLS)`);
    }
    return base;
  }
}

/** Same origin, and the path equal to the prefix's or below it on a "/" boundary (".../v1" never admits ".../v10"). */
function isUnderPrefix(base: string, prefix: string): boolean {
  return base === prefix || base.startsWith(prefix + '/');
}
