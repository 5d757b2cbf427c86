import { Router, type Request, type RequestHandler } from 'express';
import type { Logger } from 'pino';
import { assertAdmin } from '../auth/admin.js';
import { extractCredential } from '../auth/credentials.js';
import { requireTokenPrincipal, type TokenPrincipal } from '../auth/principal.js';
import type { HostReader } from '../auth/request-host.js';
import type { Clock } from '../clock.js';
import type { Metrics } from '../metrics.js';
import { ApiError, invalidRequest } from '../errors.js';
import type { ApiRateLimits } from '../quota/api-limits.js';
import { clientAddress } from '../quota/guard.js';
import { lookUpToken } from '../quota/look.js';
import type { QuotaStore } from '../quota/store.js';
import { MAX_TOKEN_LENGTH, TOKEN_PREFIX, mintToken, type MintInput } from '../token/codec.js';
import { deriveChild } from '../token/derive.js';
import type { Keyring } from '../token/keyring.js';
import { parseDeriveRequest, parseMintRequest } from '../token/mint-request.js';
import { jsonBody, KB } from './body.js';

export interface OauthDeps {
  keyring: Keyring;
  adminKey: string | undefined;
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
    const input = req.principal ? await childInput(req, requireTokenPrincipal(req.principal, 'deriving a token'), body) : newTokenInput(req, body);

    const { token, claims } = await mintToken(input, deps.keyring, deps.clock());
    if (token.length > MAX_TOKEN_LENGTH) {
      throw invalidRequest('requestAuthAndQuotas.serviceSecrets', `the token would exceed ${MAX_TOKEN_LENGTH} chars; use fewer or shorter secrets`);
    }
    deps.metrics.tokensMinted.inc({ kind: input.parent ? 'derived' : 'new' });
    req.log?.info({ jti: claims.jti, exp: claims.exp, services: claims.serviceSecrets.length, derived: input.parent !== undefined }, 'token minted');
    res.set('Cache-Control', 'no-store');
    res.json({ access_token: token, token_type: 'Bearer', expires_in: claims.exp - claims.iat });
  });

  function newTokenInput(req: Request, body: object): MintInput {
    // OAuth client-credentials style: the admin key may come as clientSecret instead of a header
    const clientSecret = (body as { clientSecret?: unknown }).clientSecret;
    assertAdmin(deps.adminKey, extractCredential(req) ?? (typeof clientSecret === 'string' ? clientSecret : undefined), 'minting');
    const mint = parseMintRequest(body, deps.maxTokenLifetimeMs);
    const host = deps.hostOf(req);
    if (!host) throw invalidRequest('Host', 'the request has no Host header to bind the token to');
    return { host, ...mint };
  }

  async function childInput(req: Request, parent: TokenPrincipal, body: object): Promise<MintInput> {
    const request = parseDeriveRequest(body, deps.maxTokenLifetimeMs);
    const now = deps.clock();
    const state = await lookUpToken(deps.quotaStore, parent.claims, clientAddress(req), now);
    if (state.outcome === 'revoked') throw new ApiError(401, 'REVOKED_API_KEY', 'token has been revoked');
    return deriveChild(parent.claims, request, now);
  }

  return router;
}
