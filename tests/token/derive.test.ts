import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/errors.js';
import { coversServiceId, type ServiceSecret, type TokenClaims } from '../../src/token/claims.js';
import { deriveChild } from '../../src/token/derive.js';
import type { ValidMint } from '../../src/token/mint-request.js';

const NOW = Date.UTC(2030, 0, 1);
const NOW_S = NOW / 1000;

function parentWith(serviceSecrets: ServiceSecret[], extra: Partial<TokenClaims> = {}): TokenClaims {
  return {
    sub: 'api.example.com#aisbreaker',
    iat: NOW_S,
    exp: NOW_S + 86400,
    jti: 'parentjti0123456789abc',
    requestQuotas: { perClientRequestLimits: { requestsPerMinute: 10 }, globalRequestLimits: { requestsPerDay: 100 } },
    serviceSecrets,
    ...extra,
  };
}

function request(overrides: Partial<ValidMint> = {}): ValidMint {
  return { requestQuotas: undefined, serviceSecrets: undefined, lifetimeSeconds: 7200, lifetimeExplicit: false, ...overrides };
}

/** The secret the gateway would send to `serviceId` (its first entry that covers it; see tests/token/claims.test.ts for the rule). */
function resolve(secrets: ServiceSecret[], serviceId: string): string | undefined {
  return secrets.find((s) => coversServiceId(s.serviceId, serviceId))?.authSecret;
}

const serviceIds = ['', 'chat:', 'chat:a', 'chat:a/x', 'chat:a/x/z', 'chat:ab', 'chat:b', 'chat:b/y', 'image:', 'image:c'];

describe('deriveChild', () => {
  it('property: a child never resolves a service to a secret its parent would not use for it, nor reaches beyond the parent', () => {
    const secretArb = fc.record({ serviceId: fc.constantFrom(...serviceIds), authSecret: fc.constantFrom('s1', 's2', 's3', 's4') });
    fc.assert(
      fc.property(fc.array(secretArb, { minLength: 1, maxLength: 6 }), fc.array(fc.constantFrom(...serviceIds), { minLength: 1, maxLength: 4 }), (parentSecrets, asked) => {
        let child;
        try {
          child = deriveChild(parentWith(parentSecrets), request({ serviceSecrets: asked.map((serviceId) => ({ serviceId })) }), NOW);
        } catch (err) {
          // refused only when the parent has no secret for an asked service
          expect(err).toBeInstanceOf(ApiError);
          expect(asked.some((id) => resolve(parentSecrets, id) === undefined)).toBe(true);
          return;
        }
        for (const probe of [...serviceIds, 'chat:a/x/z', 'chat:abc', 'other']) {
          const childSecret = resolve(child.serviceSecrets, probe);
          if (childSecret !== undefined) expect(childSecret, probe).toBe(resolve(parentSecrets, probe));
        }
        // every asked service is reachable
        for (const id of asked) expect(resolve(child.serviceSecrets, id)).toBe(resolve(parentSecrets, id));
      }),
      { numRuns: 500 },
    );
  });

  it('property: every limit of the child is the minimum, and asking for more is refused naming the window', () => {
    const limit = fc.option(fc.integer({ min: 1, max: 1000 }), { nil: undefined });
    fc.assert(
      fc.property(limit, limit, limit, limit, (pMin, pDay, askMin, askDay) => {
        const parent = parentWith([], { requestQuotas: { globalRequestLimits: { requestsPerMinute: pMin, requestsPerDay: pDay } } });
        const asked = request({ requestQuotas: { globalRequestLimits: { requestsPerMinute: askMin, requestsPerDay: askDay } } });
        const widens = (a: number | undefined, p: number | undefined): boolean => a !== undefined && p !== undefined && a > p;
        if (widens(askMin, pMin) || widens(askDay, pDay)) {
          let caught: unknown;
          try {
            deriveChild(parent, asked, NOW);
          } catch (err) {
            caught = err;
          }
          expect(caught).toBeInstanceOf(ApiError);
          expect((caught as ApiError).status).toBe(403);
          expect(String((caught as ApiError).details?.field)).toMatch(/^requestAuthAndQuotas\.requestQuotas\.globalRequestLimits\.requestsPer(Minute|Day)$/);
          return;
        }
        const child = deriveChild(parent, asked, NOW);
        const g = child.requestQuotas.globalRequestLimits;
        expect(g?.requestsPerMinute).toBe(askMin ?? pMin);
        expect(g?.requestsPerDay).toBe(askDay ?? pDay);
      }),
      { numRuns: 300 },
    );
  });

  it('records the line of ancestors with their per-client and global limits, bounded in depth', () => {
    const root = parentWith([{ serviceId: '', authSecret: 's' }]);
    const child = deriveChild(root, request(), NOW);
    expect(child.parent).toEqual({ jti: root.jti, ancestors: [{ jti: root.jti, perClientRequestLimits: { requestsPerMinute: 10 }, globalRequestLimits: { requestsPerDay: 100 } }] });
    const deep = parentWith([], {
      ancestors: [
        { jti: 'a'.repeat(22) },
        { jti: 'b'.repeat(22) },
        { jti: 'c'.repeat(22) },
      ],
    });
    expect(() => deriveChild(deep, request(), NOW)).toThrow(/levels deep/);
  });

  it('caps the lifetime at what the parent has left, and refuses an explicit longer one', () => {
    const parent = parentWith([], { exp: NOW_S + 600 });
    expect(deriveChild(parent, request(), NOW).lifetimeSeconds).toBe(600);
    expect(deriveChild(parent, request({ lifetimeSeconds: 300, lifetimeExplicit: true }), NOW).lifetimeSeconds).toBe(300);
    expect(() => deriveChild(parent, request({ lifetimeSeconds: 601, lifetimeExplicit: true }), NOW)).toThrow(ApiError);
  });
});
