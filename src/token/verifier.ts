import type { Clock } from '../clock.js';
import { TokenError, openToken, type OpenedToken } from './codec.js';
import type { Keyring } from './keyring.js';

export const DEFAULT_TOKEN_CACHE_SIZE = 10_000;

/**
 * Opens tokens, remembering the ones that opened. The cache is keyed by the whole token string,
 * so only a byte-identical copy of an authentic token can hit it: a forged or altered token
 * always goes through decryption. Expiry is checked on every call, hit or not.
 * Eviction is oldest-first; the bound keeps a flood of distinct valid tokens from growing memory.
 */
export class TokenVerifier {
  private readonly cache = new Map<string, OpenedToken>();

  constructor(
    private readonly keyring: Keyring,
    private readonly clock: Clock,
    private readonly maxCached = DEFAULT_TOKEN_CACHE_SIZE,
  ) {}

  async open(token: string): Promise<OpenedToken> {
    const now = this.clock();
    const cached = this.cache.get(token);
    if (cached) {
      if (cached.claims.exp * 1000 <= now) {
        this.cache.delete(token);
        throw new TokenError('expired', 'token has expired', cached.claims.exp);
      }
      return cached;
    }
    const opened = await openToken(token, this.keyring, now);
    if (this.cache.size >= this.maxCached) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(token, opened);
    return opened;
  }

  get cachedCount(): number {
    return this.cache.size;
  }
}
