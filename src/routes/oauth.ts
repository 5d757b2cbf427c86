import { Router, type Request, type RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { AdminActor, AdminAuthority } from '../auth/admin.js';
import { audit, limitsSummary } from '../audit.js';
import { extractCredential } from '../auth/credentials.js';
import { fingerprint, requireTokenPrincipal, type TokenPrincipal } from '../auth/principal.js';
import type { HostReader } from '../auth/request-host.js';
import type { Clock } from '../clock.js';
import type { Metrics } from '../metrics.js';
import { ApiError, invalidRequest } from '../errors.js';
import type { ApiRateLimits } from '../quota/api-limits.js';
import { clientAddress } from '../quota/guard.js';
import { lookUpToken } from '../quota/look.js';
import type { QuotaStore } from '../quota/store.js';
import { scopesOfToken } from '../token/claims.js';
import { MAX_TOKEN_LENGTH, TOKEN_PREFIX, mintToken, type MintInput } from '../token/codec.js';
import { deriveChild } from '../token/derive.js';
import type { Keyring } from '../token/keyring.js';
import { parseDeriveRequest, parseMintRequest } from '../token/mint-request.js';
import { jsonBody, KB } from './body.js';

export interface OauthDeps {
  keyring: Keyring;
  /** who may mint for others */
  admin: AdminAuthority;
  maxTokenLifetimeMs: number;
  clock: Clock;
  logger: Logger;
  /** per-address limits on minting */
  mintLimits: ApiRateLimits;
  /** authentication of a parent token, when one is presented to derive a child */
  authenticate: RequestHandler;
  quotaStore: QuotaStore;
  metrics: Metrics;
  /** the host a new token is bound to */
  hostOf: HostReader;
}

/**
 * `POST /api/v1/oauth/token`: the AIsBreaker mint body -> one `aisbreaker_` bearer token.
 * Presented with an `aisbreaker_` token as bearer, it derives a narrower child of that token;
 * otherwise it mints a new one (with the admin key, when one is configured).
 */
/** Who minted a token: an admin credential, the parent token of a child, or anyone (open minting). */
type Minter = AdminActor | { via: 'parent-token'; fingerprint: string; name?: string } | { via: 'open'; address: string };

export function oauthRoutes(deps: OauthDeps): Router {
  const router = Router();
  const limitMinting: RequestHandler = async (req, _res, next) => {
    const limited = await deps.mintLimits.consume(clientAddress(req));
    if (limited) throw limited;
    next();
  };
  const authenticateParent: RequestHandler = (req, res, next) => {
    if (extractCredential(req)?.startsWith(TOKEN_PREFIX)) return deps.authenticate(req, res, next);
    next();
  };

  router.post('/api/v1/oauth/token', limitMinting, authenticateParent, ...jsonBody(64 * KB), async (req, res) => {
    const body: unknown = req.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw invalidRequest('(body)', 'must be a JSON object');
    }
    const { input, by } = req.principal ? await childInput(req, requireTokenPrincipal(req.principal, 'deriving a token'), body) : await newTokenInput(req, body);

    const { token, claims } = await mintToken(input, deps.keyring, deps.clock());
    if (token.length > MAX_TOKEN_LENGTH) {
      throw invalidRequest('requestAuthAndQuotas.serviceSecrets', `the token would exceed ${MAX_TOKEN_LENGTH} chars; use fewer or shorter secrets`);
    }
    deps.metrics.tokensMinted.inc({ kind: input.parent ? 'derived' : 'new' });
    audit(req.log, 'token.minted', {
      by,
      ...(input.parent ? { parent: input.parent.jti } : {}),
      jti: claims.jti,
      name: claims.name,
      scopes: scopesOfToken(claims),
      limits: limitsSummary(claims.requestQuotas),
      services: claims.serviceSecrets.map((s) => s.serviceId),
      expiresAt: new Date(claims.exp * 1000).toISOString(),
    });
    res.set('Cache-Control', 'no-store');
    res.json({ access_token: token, token_type: 'Bearer', expires_in: claims.exp - claims.iat });
  });

  async function newTokenInput(req: Request, body: object): Promise<{ input: MintInput; by: Minter }> {
    // OAuth client-credentials style: the admin key may come as clientSecret instead of a header
    const clientSecret = (body as { clientSecret?: unknown }).clientSecret;
    const presented = extractCredential(req) ?? (typeof clientSecret === 'string' ? clientSecret : undefined);
    // admin-scoped tokens derive children (Authorization), they mint no new tokens
    const actor = await deps.admin.assert(req, presented, 'minting', { tokens: false });
    const mint = parseMintRequest(body, deps.maxTokenLifetimeMs);
    if (mint.scopes?.includes('admin') && actor === undefined) throw deps.admin.refuse(req, presented, 'minting a token with the admin scope');
    const host = deps.hostOf(req);
    if (!host) throw invalidRequest('Host', 'the request has no Host header to bind the token to');
    return { input: { host, ...mint }, by: actor ?? { via: 'open', address: clientAddress(req) } };
  }

  async function childInput(req: Request, parent: TokenPrincipal, body: object): Promise<{ input: MintInput; by: Minter }> {
    const request = parseDeriveRequest(body, deps.maxTokenLifetimeMs);
    const now = deps.clock();
    const state = await lookUpToken(deps.quotaStore, parent.claims, clientAddress(req), now);
    if (state.outcome === 'revoked') throw new ApiError(401, 'REVOKED_API_KEY', 'token has been revoked');
    const by: Minter = { via: 'parent-token', fingerprint: req.credentialFingerprint ?? fingerprint(parent.token), ...(parent.claims.name ? { name: parent.claims.name } : {}) };
    return { input: deriveChild(parent.claims, request, now), by };
  }


  return router;
}
