import type { Logger } from 'pino';
import { invalidRequest } from '../errors.js';
import { filterFor, type Filter } from './filters.js';
import { NETWORK_SERVICE_ID, type NetworkTargets } from './network-targets.js';
import type { ServiceRegistry, ServiceTarget } from './registry.js';
import type { ServiceProps } from './types.js';

/** Hops a request's `service` may nest (filters, gateways, the service): beyond any real chain, short of a deep-recursion risk. */
export const MAX_CHAIN_HOPS = 16;

/** What serves a request here: the filters it passes in order, then one service. */
export interface ResolvedChain {
  filters: Filter[];
  target: ServiceTarget;
  /** aisbreaker:network: the rest of the chain, for the remote gateway */
  forward?: ServiceProps;
  /**
   * the target is a gateway the request named (service.url), or one that the rest of the chain
   * tells to go on to such a gateway: it gets only the caller's own credential (whatever reaches
   * it may be passed on to a host of the caller's choosing)
   */
  callerNamedUrl: boolean;
}

/**
 * A request's `service`, as AIsBreaker chains it: filters (aisbreaker:mirror, :nop, :logging)
 * each forward to their `forward2ServiceProps`; aisbreaker:network hands the rest of the chain to
 * another gateway, configured here or (under AISBREAKER_NETWORK_URLS) named by `url`; any other
 * serviceId is a service of this server. Only aisbreaker:network takes a `url`.
 */
export function resolveChain(props: ServiceProps, registry: ServiceRegistry, networkTargets: NetworkTargets, log: Logger | undefined): ResolvedChain {
  const filters: Filter[] = [];
  let current = props;
  let field = 'service';
  for (;;) {
    const filter = filterFor(current.serviceId, log);
    const next = current.forward2ServiceProps;
    if (filter) {
      if (current.url !== undefined) throw invalidRequest(`${field}.url`, `"${current.serviceId}" is a filter of this server and takes no url`);
      if (next === undefined) throw invalidRequest(`${field}.forward2ServiceProps`, `"${current.serviceId}" is a filter: name the service it forwards to`);
      filters.push(filter);
      current = next;
      field += '.forward2ServiceProps';
      continue;
    }
    if (current.serviceId !== NETWORK_SERVICE_ID) {
      if (current.url !== undefined) throw invalidRequest(`${field}.url`, `not accepted: upstream URLs come from the server configuration; a request may name one only for "${NETWORK_SERVICE_ID}"`);
      return { filters, target: registry.resolve(current.serviceId, `${field}.serviceId`), callerNamedUrl: false };
    }
    if (next === undefined) {
      if (current.url !== undefined) throw invalidRequest(`${field}.forward2ServiceProps`, `"${NETWORK_SERVICE_ID}" needs the service to use at ${current.url}`);
      // "aisbreaker:network" alone: the registry's 400 asks for the service behind it
      return { filters, target: registry.resolve(current.serviceId, `${field}.serviceId`), callerNamedUrl: false };
    }
    const serviceId = `${NETWORK_SERVICE_ID}/${next.serviceId}`;
    if (current.url === undefined) return { filters, target: registry.resolve(serviceId, `${field}.forward2ServiceProps.serviceId`), forward: next, callerNamedUrl: namesUrl(next) };
    const service = networkTargets.serviceFor(current.url, `${field}.url`);
    return { filters, target: { prefix: NETWORK_SERVICE_ID, service, operatorSecret: undefined, fallbacks: [], serviceId, engine: next.serviceId }, forward: next, callerNamedUrl: true };
  }
}

/** Whether a hop of the chain below names a gateway by url. */
function namesUrl(props: ServiceProps): boolean {
  for (let current: ServiceProps | undefined = props; current !== undefined; current = current.forward2ServiceProps) {
    if (current.url !== undefined) return true;
  }
  return false;
}

/** How deep a request's `service` nests, counted before it is validated (a deep one is refused unparsed). */
export function chainDepth(service: unknown): number {
  let depth = 0;
  let current = service;
  while (typeof current === 'object' && current !== null && depth <= MAX_CHAIN_HOPS) {
    depth++;
    current = (current as { forward2ServiceProps?: unknown }).forward2ServiceProps;
  }
  return depth;
}
