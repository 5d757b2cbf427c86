import { ApiError } from '../errors.js';
import { secretsEqual } from './secret-compare.js';

/**
 * Checks the operator's admin key when one is configured (AISBREAKER_ADMIN_KEY); with none
 * configured everything passes, as on an AIsBreaker server.
 */
export function assertAdmin(adminKey: string | undefined, presented: string | undefined, action: string): void {
  if (adminKey === undefined) return;
  if (presented === undefined || !secretsEqual(presented, adminKey)) {
    throw new ApiError(403, 'FORBIDDEN', `${action} requires the admin key (Authorization: Bearer <admin key>)`);
  }
}
