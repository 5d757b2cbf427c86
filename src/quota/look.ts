import type { TokenClaims } from '../token/claims.js';
import { planForToken } from './plan.js';
import type { QuotaDecision, QuotaStore } from './store.js';

/** A token's revocation state and current usage, as seen by `client`, without counting anything. */
export function lookUpToken(store: QuotaStore, claims: TokenClaims, client: string, nowMs: number): Promise<QuotaDecision> {
  return store.consume(planForToken(claims, client), nowMs, 'look');
}
