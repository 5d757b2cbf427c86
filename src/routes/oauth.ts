import { Router, type RequestHandler } from 'express';
import type { Logger } from 'pino';
import { assertAdmin } from '../auth/admin.js';
import { extractCredential } from '../auth/credentials.js';
import type { Clock } from '../clock.js';
import { ApiError, invalidRequest } from '../errors.js';
import { MAX_TOKEN_LENGTH, mintToken } from '../token/codec.js';
import type { Keyring } from '../token/keyring.js';
import { parseMintRequest } from '../token/mint-request.js';
import { jsonBody } from './body.js';
import type { ApiRateLimits } from '../quota/api-limits.js';
import { clientAddress } from '../quota/guard.js';

export interface OauthDeps {
  keyring: Keyring;
  adminKey: string | undefined;
  maxTokenLifetimeMs: number;
  clock: Clock;
  logger: Logger;
  /** per-address limits on minting */
  mintLimits: ApiRateLimits;
}

/** `POST /api/v1/oauth/token`: the AIsBreaker mint body -> one `aisbreaker_` bearer token. */
export function oauthRoutes(deps: OauthDeps): Router {
  const router = Router();
  const limitMinting: RequestHandler = async (req, _res, next) => {
    const limited = await deps.mintLimits.consume(clientAddress(req));
    if (limited) throw limited;
    next();
  };
  router.post('/api/v1/oauth/token', limitMinting, ...jsonBody('64kb'), async (req, res) => {
    const body: unknown = req.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw invalidRequest('(body)', 'must be a JSON object');
    }
    // OAuth client-credentials style: the admin key may come as clientSecret instead of a header
    const clientSecret = (body as { clientSecret?: unknown }).clientSecret;
    assertAdmin(deps.adminKey, extractCredential(req) ?? (typeof clientSecret === 'string' ? clientSecret : undefined), 'minting');

    const mint = parseMintRequest(body, deps.maxTokenLifetimeMs);
    const host = req.hostname;
    if (!host) throw invalidRequest('Host', 'the request has no Host header to bind the token to');

    const { token, claims } = await mintToken({ host, ...mint }, deps.keyring, deps.clock());
    if (token.length > MAX_TOKEN_LENGTH) {
      throw new ApiError(400, 'INVALID_REQUEST', `requestAuthAndQuotas.serviceSecrets: the token would exceed ${MAX_TOKEN_LENGTH} chars; use fewer or shorter secrets`, {
        field: 'requestAuthAndQuotas.serviceSecrets',
      });
    }
    deps.logger.info({ reqId: req.requestId, jti: claims.jti, exp: claims.exp, services: claims.serviceSecrets.length }, 'token minted');
    res.set('Cache-Control', 'no-store');
    res.json({ access_token: token, token_type: 'Bearer', expires_in: claims.exp - claims.iat });
  });
  return router;
}
