import { KEY_PREFIX, type CounterSpec, type QuotaPlan, type QuotaUnit } from '../quota/plan.js';
import { WINDOW_MS, type WindowName } from '../quota/windows.js';
import type { ModelLimits, OperatorKey } from './directory.js';

const FIELDS: [keyof ModelLimits, QuotaUnit, WindowName][] = [
  ['requestMinute', 'requests', 'minute'],
  ['requestHour', 'requests', 'hour'],
  ['requestDay', 'requests', 'day'],
  ['minute', 'tokens', 'minute'],
  ['day', 'tokens', 'day'],
  ['week', 'tokens', 'week'],
  ['month', 'tokens', 'month'],
];

/**
 * The quota plan of one request with an operator key for one model: counted per key and model
 * (all callers of the key share it), in the same store and with the same algorithm as tokens.
 * Keys share the hash tag `{k:<key id>}`.
 */
export function planForKeyModel(key: OperatorKey, model: string, limits: ModelLimits): QuotaPlan {
  const base = `${KEY_PREFIX}:{k:${key.id}}:${model}`;
  const counters: CounterSpec[] = [];
  for (const [field, unit, window] of FIELDS) {
    const limit = limits[field];
    if (limit === undefined) continue;
    counters.push({ key: `${base}:${unit === 'requests' ? 'r' : 't'}:${window}`, scope: 'global', window, unit, limit, windowMs: WINDOW_MS[window] });
  }
  // operator keys are revoked by removing them from the config
  return { counters, revocationKeys: [], expiresAtMs: Number.POSITIVE_INFINITY };
}
