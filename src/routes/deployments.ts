import { Router, type RequestHandler } from 'express';
import type { Clock } from '../clock.js';
import { ApiError, missingCredential } from '../errors.js';
import { limitsForModel } from '../keys/directory.js';
import { planForKeyModel } from '../keys/plan.js';
import { clientAddress, modelNotAllowed } from '../quota/guard.js';
import { requireTokenPrincipal } from '../auth/principal.js';
import { lookUpToken } from '../quota/look.js';
import type { QuotaUnit } from '../quota/plan.js';
import { tightestOf, type CounterStatus, type QuotaStore } from '../quota/store.js';
import type { WindowName } from '../quota/windows.js';
import type { ServiceRegistry } from '../services/registry.js';

export interface DeploymentDeps {
  /** authentication, with the scope the endpoint needs */
  authenticate: RequestHandler[];
  quotaStore: QuotaStore;
  clock: Clock;
  /** the current registry: an operator key's role entries are matched against the resolved model */
  registry: () => ServiceRegistry;
}

/** AI DIAL reports an unlimited window with Java's Long.MAX_VALUE as its total. */
const UNLIMITED = 9223372036854775807;

const DIAL_FIELDS: [string, QuotaUnit, WindowName][] = [
  ['minuteTokenStats', 'tokens', 'minute'],
  ['dayTokenStats', 'tokens', 'day'],
  ['weekTokenStats', 'tokens', 'week'],
  ['monthTokenStats', 'tokens', 'month'],
  ['minuteRequestStats', 'requests', 'minute'],
  ['hourRequestStats', 'requests', 'hour'],
  ['dayRequestStats', 'requests', 'day'],
];

/** Usage in AI DIAL's shape: per window `{total, used}`, the tightest counter where several apply. */
function dialStats(statuses: CounterStatus[]): Record<string, { total: number; used: number }> {
  const stats: Record<string, { total: number; used: number }> = {};
  for (const [name, unit, window] of DIAL_FIELDS) {
    const tightest = tightestOf(statuses.filter((s) => s.counter.unit === unit && s.counter.window === window));
    stats[name] = tightest ? { total: tightest.counter.limit, used: tightest.counter.limit - tightest.remaining } : { total: UNLIMITED, used: 0 };
  }
  return stats;
}

/**
 * `GET /v1/deployments/{model}/limits` (AI DIAL): what the caller has used and may still use of a
 * model, per window. Looks only: nothing is counted.
 */
export function deploymentRoutes(deps: DeploymentDeps): Router {
  const router = Router();
  router.get('/v1/deployments/:model/limits', ...deps.authenticate, async (req, res) => {
    const principal = req.principal;
    if (!principal) throw missingCredential();
    const model = String(req.params.model);
    const now = deps.clock();
    if (principal.kind === 'key') {
      const target = deps.registry().resolveModel(model);
      const allowed = limitsForModel(principal.key, target);
      if (!allowed) throw modelNotAllowed(target);
      const state = await deps.quotaStore.consume(planForKeyModel(principal.key, allowed.name, allowed.limits), now, 'look');
      res.json(dialStats(state.outcome === 'admitted' ? state.statuses : []));
      return;
    }
    const token = requireTokenPrincipal(principal, 'GET /v1/deployments/{model}/limits');
    const state = await lookUpToken(deps.quotaStore, token.claims, clientAddress(req), now);
    if (state.outcome === 'revoked') throw new ApiError(401, 'REVOKED_API_KEY', 'token has been revoked');
    res.json(dialStats(state.outcome === 'admitted' ? state.statuses : []));
  });
  return router;
}
