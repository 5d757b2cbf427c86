import { secretsEqual } from '../auth/secret-compare.js';
import { ApiError, invalidRequest } from '../errors.js';
import {
  MAX_DERIVATION_DEPTH,
  MAX_SERVICE_SECRETS,
  coversServiceId,
  scopesOfToken,
  hostOfSubject,
  type Ancestor,
  type RequestLimits,
  type RequestQuotas,
  type ServiceSecret,
  type TokenClaims,
} from './claims.js';
import type { Scope } from '../scopes.js';
import type { MintInput } from './codec.js';
import type { ValidMint } from './mint-request.js';

/**
 * Attenuation: a token asks for a child token with less. Every limit is the request's where it
 * asks for no more than the parent allows (the parent's where it asks nothing), services are a
 * subset of the parent's with the parent's secrets, expiry is no later than the parent's, the
 * host is the parent's. Asking for more anywhere is refused, naming the field.
 */

function forbidden(field: string, message: string): ApiError {
  return new ApiError(403, 'FORBIDDEN', `${field}: ${message}`, { field });
}

const WINDOW_FIELDS = ['requestsPerMinute', 'requestsPerHour', 'requestsPerDay', 'tokensPerMinute', 'tokensPerHour', 'tokensPerDay'] as const;

function narrowLimits(parent: RequestLimits | undefined, requested: RequestLimits | undefined, field: string): RequestLimits | undefined {
  const result: RequestLimits = {};
  for (const window of WINDOW_FIELDS) {
    const allowed = parent?.[window];
    const asked = requested?.[window];
    if (asked !== undefined && allowed !== undefined && asked > allowed) {
      throw forbidden(`${field}.${window}`, `asks for ${asked}, the parent token allows ${allowed}`);
    }
    const limit = asked ?? allowed;
    if (limit !== undefined) result[window] = limit;
  }
  return Object.keys(result).length > 0 ? result : undefined;
}

function narrowQuotas(parent: RequestQuotas, requested: RequestQuotas | undefined): RequestQuotas {
  const field = 'requestAuthAndQuotas.requestQuotas';
  const quotas: RequestQuotas = {};
  const perClient = narrowLimits(parent.perClientRequestLimits, requested?.perClientRequestLimits, `${field}.perClientRequestLimits`);
  const global = narrowLimits(parent.globalRequestLimits, requested?.globalRequestLimits, `${field}.globalRequestLimits`);
  if (perClient) quotas.perClientRequestLimits = perClient;
  if (global) quotas.globalRequestLimits = global;
  return quotas;
}

function narrowServices(parent: ServiceSecret[], requested: ValidMint['serviceSecrets']): ServiceSecret[] {
  if (requested === undefined) return parent;
  const child: ServiceSecret[] = [];
  requested.forEach((entry, i) => {
    const field = `requestAuthAndQuotas.serviceSecrets.${i}`;
    const at = parent.findIndex((p) => coversServiceId(p.serviceId, entry.serviceId));
    const granting = parent[at];
    if (!granting) throw forbidden(`${field}.serviceId`, 'the parent token has no secret for this service');
    // constant time: the caller must not learn the parent's secret by guessing it
    if (entry.authSecret !== undefined && !secretsEqual(entry.authSecret, granting.authSecret)) {
      throw forbidden(`${field}.authSecret`, 'a derived token takes its secrets from the parent; omit authSecret');
    }
    // the parent's more specific entries before the granting one win for their services (first
    // match): the child keeps them, so it never sends a secret where the parent sends another
    const shadowing = parent.slice(0, at).filter((p) => coversServiceId(entry.serviceId, p.serviceId));
    for (const e of [...shadowing, { serviceId: entry.serviceId, authSecret: granting.authSecret }]) {
      // a later entry with the same serviceId could never match first
      if (!child.some((c) => c.serviceId === e.serviceId)) child.push(e);
    }
  });
  if (child.length > MAX_SERVICE_SECRETS) {
    throw invalidRequest('requestAuthAndQuotas.serviceSecrets', `the child would need more than ${MAX_SERVICE_SECRETS} entries; ask for fewer services`);
  }
  return child;
}

/** The child's scopes: the parent's unless it asks for fewer; never one the parent lacks. */
function narrowScopes(parent: TokenClaims, requested: Scope[] | undefined): Scope[] | undefined {
  if (requested === undefined) return parent.scopes;
  const allowed = scopesOfToken(parent);
  requested.forEach((scope, i) => {
    if (!allowed.includes(scope)) throw forbidden(`scopes.${i}`, `the parent token has no "${scope}" scope (it has ${allowed.join(', ')})`);
  });
  return requested;
}

/** The mint input of a child of `parent`, or a 403 naming what it asked too much of. */
export function deriveChild(parent: TokenClaims, request: ValidMint, nowMs: number): MintInput {
  const { perClientRequestLimits, globalRequestLimits } = parent.requestQuotas;
  const ancestors: Ancestor[] = [...(parent.ancestors ?? []), { jti: parent.jti, perClientRequestLimits, globalRequestLimits }];
  if (ancestors.length > MAX_DERIVATION_DEPTH) {
    throw forbidden('Authorization', `tokens can be derived at most ${MAX_DERIVATION_DEPTH} levels deep`);
  }
  const parentRemaining = parent.exp - Math.floor(nowMs / 1000);
  if (request.lifetimeExplicit && request.lifetimeSeconds > parentRemaining) {
    throw forbidden('expirationTimeSpan', `the parent token expires in ${parentRemaining} s`);
  }
  return {
    host: hostOfSubject(parent.sub),
    requestQuotas: narrowQuotas(parent.requestQuotas, request.requestQuotas),
    serviceSecrets: narrowServices(parent.serviceSecrets, request.serviceSecrets),
    lifetimeSeconds: Math.min(request.lifetimeSeconds, parentRemaining),
    parent: { jti: parent.jti, ancestors },
    // a child names itself: its parent's name and description are not inherited
    name: request.name,
    description: request.description,
    scopes: narrowScopes(parent, request.scopes),
  };
}
