import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openToken, TokenError } from '../../src/token/codec.js';
import { Keyring } from '../../src/token/keyring.js';
import { mint, startGateway, TEST_SECRET, type TestGateway } from '../helpers/gateway.js';
import { claimsFor, legacyToken, rawHttp, requestText } from '../helpers/hostile.js';

/**
 * Property: any single-char mutation of a token (replace, delete, insert, anywhere, including the
 * last char of each segment, whose low bits decoders ignore) is refused: 401 INVALID_API_KEY over
 * HTTP, never a 500, never accepted, and never "expired" (an altered token learns nothing).
 */

/** visible ASCII: everything a header value can carry without quoting */
const CHARS = Array.from({ length: 0x7e - 0x21 + 1 }, (_, i) => String.fromCharCode(0x21 + i));

type Mutation = { kind: 'replace' | 'insert'; at: number; char: string } | { kind: 'delete'; at: number };

function mutation(token: string): fc.Arbitrary<Mutation> {
  // the last char of each segment (and the dots) are where sloppy decoding hides: draw them often
  const hotSpots = [...token].flatMap((c, i) => (c === '.' ? [i - 1, i, i + 1] : [])).concat([token.length - 1, 'aisbreaker_'.length]);
  const at = fc.oneof(fc.nat({ max: token.length - 1 }), fc.constantFrom(...hotSpots.filter((i) => i >= 0 && i < token.length)));
  return fc.oneof(
    fc.record({ kind: fc.constant('replace' as const), at, char: fc.constantFrom(...CHARS) }),
    fc.record({ kind: fc.constant('insert' as const), at, char: fc.constantFrom(...CHARS) }),
    fc.record({ kind: fc.constant('delete' as const), at }),
  );
}

function apply(token: string, m: Mutation): string {
  if (m.kind === 'delete') return token.slice(0, m.at) + token.slice(m.at + 1);
  if (m.kind === 'insert') return token.slice(0, m.at) + m.char + token.slice(m.at);
  return token.slice(0, m.at) + m.char + token.slice(m.at + 1);
}

describe('property: every single-char mutation of a token is refused', () => {
  let gw: TestGateway;
  let token: string;
  const keyring = new Keyring(TEST_SECRET, [], ['legacy-keyphrase-for-mutation-tests-0123']);

  beforeAll(async () => {
    gw = await startGateway();
    token = await mint(gw.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: 'sk-mutation-0123456789' }] } });
  });
  afterAll(() => gw.close());

  it('over HTTP: 401 INVALID_API_KEY on /api/v1/process (200 mutations)', async () => {
    await fc.assert(
      fc.asyncProperty(mutation(token), async (m) => {
        const mutated = apply(token, m);
        fc.pre(mutated !== token);
        const res = await rawHttp(
          gw.port,
          requestText('POST', '/api/v1/process', ['Content-Type: application/json', `Authorization: Bearer ${mutated}`], JSON.stringify({ service: { serviceId: 'chat:dummy' }, request: { inputs: [] } })),
        );
        expect({ status: res.status, code: (JSON.parse(res.body) as { error?: { code?: string } }).error?.code }).toEqual({ status: 401, code: 'INVALID_API_KEY' });
      }),
      { numRuns: 200 },
    );
    // and the original still works
    const res = await rawHttp(gw.port, requestText('GET', '/api/v1/oauth/tokeninfo', [`Authorization: Bearer ${token}`]));
    expect(res.status).toBe(200);
  });

  it('openToken directly: a v2 token, 3000 mutations, all "invalid"', async () => {
    await fc.assert(
      fc.asyncProperty(mutation(token), async (m) => {
        const mutated = apply(token, m);
        fc.pre(mutated !== token);
        const outcome = await openToken(mutated, keyring, Date.now()).then(
          () => 'accepted',
          (err: unknown) => (err instanceof TokenError ? err.failure : `crashed: ${String(err)}`),
        );
        expect(outcome).toBe('invalid');
      }),
      { numRuns: 3000 },
    );
  });

  it('openToken directly: a legacy token in legacy mode, 1500 mutations, all "invalid"', async () => {
    const legacy = await legacyToken('legacy-keyphrase-for-mutation-tests-0123', claimsFor());
    await expect(openToken(legacy, keyring, Date.now())).resolves.toMatchObject({ legacy: true });
    await fc.assert(
      fc.asyncProperty(mutation(legacy), async (m) => {
        const mutated = apply(legacy, m);
        fc.pre(mutated !== legacy);
        const outcome = await openToken(mutated, keyring, Date.now()).then(
          () => 'accepted',
          (err: unknown) => (err instanceof TokenError ? err.failure : `crashed: ${String(err)}`),
        );
        expect(outcome).toBe('invalid');
      }),
      { numRuns: 1500 },
    );
  });
});
