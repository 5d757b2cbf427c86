import type { Request } from 'express';
import type { Clock } from '../clock.js';
import { audit } from '../audit.js';
import { ApiError, missingScope } from '../errors.js';
import type { ApiRateLimits } from '../quota/api-limits.js';
import { clientAddress } from '../quota/guard.js';
import { keyExpired, type KeyDirectory } from '../keys/directory.js';
import { scopesOfToken, hostOfSubject, type TokenClaims } from '../token/claims.js';
import { TOKEN_PREFIX } from '../token/codec.js';
import type { TokenVerifier } from '../token/verifier.js';
import { fingerprint } from './principal.js';
import type { HostReader } from './request-host.js';
import { secretsEqual } from './secret-compare.js';

/** Who performed an administrative act: for the audit line (a fingerprint and a name, never the credential). */
export interface AdminActor {
  via: 'admin-key' | 'operator-key' | 'token';
  fingerprint: string;
  name?: string;
}

export interface AdminDeps {
  /** AISBREAKER_ADMIN_KEY */
  adminKey: string | undefined;
  operatorKeys: () => KeyDirectory;
  verifier: TokenVerifier;
  hostOf: HostReader;
  /** whether a token has been revoked (revocation is checked in the quota store) */
  isRevoked: (claims: TokenClaims) => Promise<boolean>;
  clock: Clock;
  /** refused credentials per caller address: a wrong admin credential is one, and can be guessed */
  failureLimits: ApiRateLimits;
}

/**
 * The admin credentials: AISBREAKER_ADMIN_KEY, and every operator key or token with the `admin`
 * scope (so an operator can hold several named admin keys and rotate them one by one). While none
 * is configured, minting and introspection stay open, as on an AIsBreaker server.
 */
export class AdminAuthority {
  constructor(private readonly deps: AdminDeps) {}

  /** Whether admin acts need an admin credential: once the admin key or an admin-scoped operator key exists. */
  get required(): boolean {
    return this.deps.adminKey !== undefined || this.deps.operatorKeys().hasAdminKeys;
  }

  /**
   * The admin `presented` is, or undefined (the admin key is compared in constant time). `tokens`:
   * whether an admin-scoped token counts; it does not for minting new tokens, or a child of one
   * (limited, short-lived, revoked with its parent) could mint itself a root token that is none of these.
   */
  private async actorFor(req: Request, presented: string | undefined, tokens: boolean): Promise<AdminActor | undefined> {
    if (presented === undefined) return undefined;
    const id = fingerprint(presented);
    if (this.deps.adminKey !== undefined && secretsEqual(presented, this.deps.adminKey)) return { via: 'admin-key', fingerprint: id, name: 'AISBREAKER_ADMIN_KEY' };
    if (presented.startsWith(TOKEN_PREFIX)) {
      if (!tokens) return undefined;
      const claims = await this.validToken(req, presented);
      return claims && scopesOfToken(claims).includes('admin') ? withName({ via: 'token', fingerprint: id }, claims.name) : undefined;
    }
    const key = this.deps.operatorKeys().find(presented);
    return key !== undefined && !keyExpired(key, this.deps.clock()) && key.scopes.includes('admin') ? withName({ via: 'operator-key', fingerprint: id }, key.name) : undefined;
  }

  /**
   * The admin behind `presented`, or 403 naming the `admin` scope. `always`: even on a server
   * without admin credentials (revocation by jti is never open); otherwise such a server lets
   * the act through without an actor. `tokens`: see actorFor. A refusal counts against the caller's address (and is an
   * audit line); from an address over that limit no admin credential is even tried (429).
   */
  async assert(req: Request, presented: string | undefined, action: string, { always = false, tokens = true } = {}): Promise<AdminActor | undefined> {
    const needed = always || this.required;
    const address = clientAddress(req);
    return this.deps.failureLimits.countRefusals(
      address,
      async (blocked) => {
        if (blocked && (needed || presented !== undefined)) throw blocked;
        const actor = await this.actorFor(req, presented, tokens);
        if (actor === undefined && needed) throw this.refuse(req, presented, action, `${action} (the admin key, or a credential with the admin scope)`);
        return actor;
      },
      (err) => err instanceof ApiError && err.status === 403,
    );
  }

  /** The 403 for an act that needs an admin, written to the audit trail; `explanation`: the message's words for the act. */
  refuse(req: Request, presented: string | undefined, action: string, explanation = action): ApiError {
    audit(req.log, 'admin.refused', { action, credential: presented === undefined ? undefined : fingerprint(presented), address: clientAddress(req) });
    return missingScope('admin', explanation);
  }

  /** A token that authenticates here: not expired, bound to this host, not revoked. */
  private async validToken(req: Request, token: string): Promise<TokenClaims | undefined> {
    let claims: TokenClaims;
    try {
      claims = (await this.deps.verifier.open(token)).claims;
    } catch {
      return undefined;
    }
    if (hostOfSubject(claims.sub).toLowerCase() !== (this.deps.hostOf(req) ?? '').toLowerCase()) return undefined;
    return (await this.deps.isRevoked(claims)) ? undefined : claims;
  }
}

function withName(actor: AdminActor, name: string | undefined): AdminActor {
  return name === undefined ? actor : { ...actor, name };
}
