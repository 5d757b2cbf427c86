import fc from 'fast-check';
import ms from 'ms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openToken } from '../../src/token/codec.js';
import { Keyring } from '../../src/token/keyring.js';
import { startGateway, TEST_SECRET, type TestGateway } from '../helpers/gateway.js';

/**
 * Property: any mint body the gateway accepts round-trips exactly. The claims inside the token
 * (opened with the server's key) and tokeninfo carry the quotas, services, secrets and lifetime
 * that were asked for, nothing more, nothing less, for arbitrary unicode (lone surrogates, NUL,
 * RTL marks, astral planes) in ids and secrets.
 */

const WINDOWS = ['requestsPerMinute', 'requestsPerHour', 'requestsPerDay', 'tokensPerMinute', 'tokensPerHour', 'tokensPerDay'] as const;

const limits = fc.record(Object.fromEntries(WINDOWS.map((w) => [w, fc.integer({ min: 1, max: 1_000_000_000 })])) as Record<(typeof WINDOWS)[number], fc.Arbitrary<number>>, {
  requiredKeys: [],
});

/** strings that stress the JSON and JWE layers: any code point, plus lone surrogates, NUL and bidi marks */
const hostileText = (maxLength: number, minLength = 0): fc.Arbitrary<string> =>
  fc.oneof(
    fc.string({ unit: 'binary', minLength, maxLength }),
    fc.string({ unit: fc.constantFrom('\ud800', '\udfff', '\u0000', '\u202e', '\u2066', '\u2028', '\ufeff', '"', '\\', 'a', 'é', '😀'), minLength, maxLength }),
  );

const serviceSecret = fc.record({ serviceId: hostileText(40), authSecret: hostileText(120, 1) });

const SPANS = ['15m', '1h', '2h', '90 minutes', '1 day', '30d', '90 days', '365d'];

const mintBody = fc.record(
  {
    requestAuthAndQuotas: fc.record(
      {
        requestQuotas: fc.record({ perClientRequestLimits: limits, globalRequestLimits: limits }, { requiredKeys: [] }),
        serviceSecrets: fc.array(serviceSecret, { maxLength: 3 }),
      },
      { requiredKeys: [] },
    ),
    expirationTimeSpan: fc.constantFrom(...SPANS),
    clientId: hostileText(20),
  },
  { requiredKeys: ['requestAuthAndQuotas'] },
);

interface TokenInfo {
  host: string;
  services: string[];
  requestQuotas: unknown;
  exp: number;
  iat: number;
}

describe('property: an accepted mint body round-trips exactly', () => {
  let gw: TestGateway;
  const keyring = new Keyring(TEST_SECRET);
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(() => gw.close());

  it('claims and tokeninfo equal the input (150 bodies)', async () => {
    await fc.assert(
      fc.asyncProperty(mintBody, async (body) => {
        const res = await fetch(`${gw.url}/api/v1/oauth/token`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
        const text = await res.text();
        expect({ status: res.status, text: text.slice(0, 300) }).toMatchObject({ status: 200 });
        const { access_token: token, expires_in: expiresIn } = JSON.parse(text) as { access_token: string; expires_in: number };

        const wantQuotas = body.requestAuthAndQuotas.requestQuotas ?? {};
        const wantSecrets = body.requestAuthAndQuotas.serviceSecrets ?? [];
        const wantLifetime = Math.ceil(ms((body.expirationTimeSpan ?? '2h') as ms.StringValue) / 1000);

        const { claims, legacy } = await openToken(token, keyring, Date.now());
        expect(legacy).toBe(false);
        expect(claims.requestQuotas).toEqual(wantQuotas);
        expect(claims.serviceSecrets).toEqual(wantSecrets);
        // exact strings, code unit for code unit (toEqual would not tell "\ud800" from "\ufffd")
        claims.serviceSecrets.forEach((s, i) => {
          expect(s.authSecret === wantSecrets[i]?.authSecret && s.serviceId === wantSecrets[i]?.serviceId).toBe(true);
        });
        expect(claims.exp - claims.iat).toBe(wantLifetime);
        expect(expiresIn).toBe(wantLifetime);
        expect(claims.sub).toBe('127.0.0.1#aisbreaker');
        expect(Object.keys(claims).sort()).toEqual(['exp', 'iat', 'jti', 'requestQuotas', 'serviceSecrets', 'sub']);

        const info = await fetch(`${gw.url}/api/v1/oauth/tokeninfo`, { headers: { Authorization: `Bearer ${token}` } });
        expect(info.status).toBe(200);
        const infoText = await info.text();
        const json = JSON.parse(infoText) as TokenInfo;
        expect(json.requestQuotas).toEqual(wantQuotas);
        expect(json.services).toEqual(wantSecrets.map((s) => s.serviceId));
        expect(json.host).toBe('127.0.0.1');
        expect(json.exp - json.iat).toBe(wantLifetime);
        // tokeninfo never shows a secret
        for (const s of wantSecrets) {
          if (s.authSecret.length >= 12 && !wantSecrets.some((o) => o.serviceId.includes(s.authSecret))) {
            expect(infoText.includes(JSON.stringify(s.authSecret).slice(1, -1))).toBe(false);
          }
        }
      }),
      { numRuns: 150 },
    );
  });
});
