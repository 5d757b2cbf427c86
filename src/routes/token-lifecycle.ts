import { Router, type Request, type RequestHandler } from 'express';
import type { AdminActor, AdminAuthority } from '../auth/admin.js';
import { audit } from '../audit.js';
import { extractCredential } from '../auth/credentials.js';
import { assertScope, fingerprint, requireTokenPrincipal } from '../auth/principal.js';
import type { Clock } from '../clock.js';
import type { Metrics } from '../metrics.js';
import { ApiError, invalidRequest } from '../errors.js';
import { clientAddress } from '../quota/guard.js';
import { lookUpToken } from '../quota/look.js';
import { revocationKey } from '../quota/plan.js';
import type { CounterStatus, QuotaStore } from '../quota/store.js';
import { TOKEN_ID, hostOfSubject, scopesOfToken, type TokenClaims } from '../token/claims.js';
import { TokenError } from '../token/codec.js';
import type { TokenVerifier } from '../token/verifier.js';
import { formOrJsonBody, KB } from './body.js';

export interface LifecycleDeps {
  verifier: TokenVerifier;
  quotaStore: QuotaStore;
  /** who may introspect and revoke by jti */
  admin: AdminAuthority;
  /** a token expiring within this many ms is told so in tokeninfo */
  expiryNoticeMs: number;
  maxTokenLifetimeMs: number;
  clock: Clock;
  /** authentication of the bearer token (tokeninfo) */
  authenticate: RequestHandler;
  metrics: Metrics;
}

/** A flat string field of a form or JSON body. */
function field(req: Request, name: string): string | undefined {
  const value: unknown = (req.body as Record<string, unknown> | undefined)?.[name];
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string') throw invalidRequest(name, 'must be a string');
  return value;
}

/** The claims of a token, expired or not (an expired token needs no revocation), or undefined if it is not ours. */
async function openForLifecycle(verifier: TokenVerifier, token: string): Promise<TokenClaims | 'expired' | undefined> {
  try {
    return (await verifier.open(token)).claims;
  } catch (err) {
    if (err instanceof TokenError) return err.failure === 'expired' ? 'expired' : undefined;
    throw err;
  }
}

function usageOf(statuses: CounterStatus[]): object[] {
  return statuses.map((s) => ({
    scope: s.counter.scope,
    unit: s.counter.unit,
    window: s.counter.window,
    limit: s.counter.limit,
    used: s.counter.limit - s.remaining,
    remaining: s.remaining,
    resetSeconds: Math.ceil(s.resetMs / 1000),
    ...(s.counter.ancestorJti ? { ancestor: s.counter.ancestorJti } : {}),
  }));
}

/** What may be shown of a token: everything but its secrets. */
function describe(claims: TokenClaims, nowMs: number, expiryNoticeMs: number): Record<string, unknown> {
  const expiresIn = Math.max(0, claims.exp - Math.floor(nowMs / 1000));
  return {
    jti: claims.jti,
    ...(claims.name !== undefined ? { name: claims.name } : {}),
    ...(claims.description !== undefined ? { description: claims.description } : {}),
    scopes: scopesOfToken(claims),
    host: hostOfSubject(claims.sub),
    iat: claims.iat,
    exp: claims.exp,
    expires_at: new Date(claims.exp * 1000).toISOString(),
    expires_in: expiresIn,
    // "rotate before expiration": true once within AISBREAKER_EXPIRY_NOTICE of it
    expires_soon: expiresIn * 1000 <= expiryNoticeMs,
    services: claims.serviceSecrets.map((s) => s.serviceId),
    requestQuotas: claims.requestQuotas,
    ...(claims.ancestors ? { parent: claims.ancestors.at(-1)?.jti, depth: claims.ancestors.length } : {}),
  };
}

/**
 * Token lifecycle: revocation (RFC 7009 shape), introspection (RFC 7662, operators) and
 * tokeninfo (the holder's own view, with usage per window). None of them ever shows a secret.
 */
/** How long a revocation by jti alone holds: for good, in practice (a few bytes per revoked token). */
const JTI_REVOCATION_MS = 100 * 365 * 24 * 3600 * 1000;

export function lifecycleRoutes(deps: LifecycleDeps): Router {
  // `always`: even on a server without admin credentials
  const requireAdmin = (req: Request, action: string, always: boolean): Promise<AdminActor | undefined> => deps.admin.assert(req, extractCredential(req), action, { always });

  const router = Router();

  router.post('/api/v1/oauth/revoke', ...formOrJsonBody(16 * KB), async (req, res) => {
    const token = field(req, 'token');
    const jti = field(req, 'jti');
    const now = deps.clock();

    if (token === undefined) {
      if (jti === undefined) throw invalidRequest('token', 'required (or jti, with the admin key)');
      const actor = await requireAdmin(req, 'revoking by jti', true);
      if (!TOKEN_ID.test(jti)) throw invalidRequest('jti', 'not a token id');
      // the token's expiry is unknown, and may be later than today's maximum lifetime allows (a
      // token minted before it was lowered, a legacy token): keep the mark for good
      await deps.quotaStore.revoke(revocationKey(jti), now + JTI_REVOCATION_MS, now);
      deps.metrics.tokensRevoked.inc({ by: 'admin' });
      audit(req.log, 'token.revoked', { by: actor, jti });
      res.json({ revoked: true, jti });
      return;
    }
    // presenting the token is enough; another credential beside it claims to be an admin's, and is
    // checked (and a wrong one counted) like any admin credential
    const presented = extractCredential(req);
    const actor = presented === undefined || presented === token ? undefined : await deps.admin.assert(req, presented, 'revoking a token as an admin', { always: true });
    // presenting the token proves possession: its holder may revoke it (RFC 7009)
    const claims = await openForLifecycle(deps.verifier, token);
    if (claims === undefined || claims === 'expired') {
      // RFC 7009: an invalid or dead token is no error, there is just nothing to revoke
      res.json({ revoked: false, reason: claims === 'expired' ? 'token has expired' : 'not a token of this server' });
      return;
    }
    await deps.quotaStore.revoke(revocationKey(claims.jti), claims.exp * 1000, now);
    deps.metrics.tokensRevoked.inc({ by: actor ? 'admin' : 'holder' });
    audit(req.log, 'token.revoked', { by: actor ?? { via: 'holder', fingerprint: fingerprint(token), ...(claims.name ? { name: claims.name } : {}) }, jti: claims.jti, name: claims.name });
    res.json({ revoked: true, jti: claims.jti });
  });

  router.post('/api/v1/oauth/introspect', ...formOrJsonBody(16 * KB), async (req, res) => {
    const actor = await requireAdmin(req, 'introspection', false);
    const token = field(req, 'token');
    if (token === undefined) throw invalidRequest('token', 'required');
    const claims = await openForLifecycle(deps.verifier, token);
    audit(req.log, 'token.introspected', { by: actor ?? { via: 'open', address: clientAddress(req) }, jti: typeof claims === 'object' ? claims.jti : undefined, active: typeof claims === 'object' });
    if (claims === undefined || claims === 'expired') {
      res.json({ active: false });
      return;
    }
    const now = deps.clock();
    const state = await lookUpToken(deps.quotaStore, claims, 'introspection', now);
    if (state.outcome === 'revoked') {
      res.json({ active: false, revoked: true, jti: claims.jti });
      return;
    }
    const globalUsage = state.outcome === 'admitted' ? state.statuses.filter((s) => s.counter.scope === 'global') : [];
    res.json({ active: true, token_type: 'Bearer', sub: claims.sub, ...describe(claims, now, deps.expiryNoticeMs), usage: usageOf(globalUsage) });
  });

  router.get('/api/v1/oauth/tokeninfo', deps.authenticate, async (req, res) => {
    const principal = requireTokenPrincipal(assertScope(req.principal, 'analytics:read', 'tokeninfo'), 'tokeninfo');
    const now = deps.clock();
    const state = await lookUpToken(deps.quotaStore, principal.claims, clientAddress(req), now);
    if (state.outcome === 'revoked') throw new ApiError(401, 'REVOKED_API_KEY', 'token has been revoked');
    res.set('Cache-Control', 'no-store');
    res.json({ active: true, ...describe(principal.claims, now, deps.expiryNoticeMs), usage: state.outcome === 'admitted' ? usageOf(state.statuses) : [] });
  });

  return router;
}
