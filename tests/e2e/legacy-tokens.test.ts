import { createHash } from 'node:crypto';
import { EncryptJWT, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../helpers/clock.js';
import { mint, startGateway, type TestGateway } from '../helpers/gateway.js';
import { expectError, expectServes, getJson, mintRaw, postForm, tokenHeader, useToken } from '../helpers/lifecycle-helpers.js';

const KEYPHRASE = 'aisbreaker.org-SuperSecret20398ucn938tVn24568';
const SECOND_KEYPHRASE = 'fooKeafncfasc-transition-keyphrase';
const UPSTREAM_SECRET = 'sk-legacy-openai-secret-2718281828459';

/**
 * A token exactly as an original AIsBreaker server made it (JsonWebEncryptionUtils.encryptJson):
 * the RequestAuthAndQuotas object as payload, header {ver, typ, alg dir, enc A128CBC-HS256},
 * subject "<host>#aisbreaker", key = sha256(keyphrase), prefix "aisbreaker_".
 */
async function legacyToken(
  keyphrase: string,
  options: { host?: string; iat: number; lifetimeSeconds?: number; requestAuthAndQuotas?: Record<string, unknown> },
): Promise<string> {
  const key = createHash('sha256').update(keyphrase).digest();
  const payload = options.requestAuthAndQuotas ?? {
    requestQuotas: { perClientRequestLimits: { requestsPerMinute: 2 } },
    serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: UPSTREAM_SECRET }],
  };
  const jwt = await new EncryptJWT(payload as JWTPayload)
    .setProtectedHeader({ ver: 'aisbreaker.org/jwt/v1', typ: 'JOSE', alg: 'dir', enc: 'A128CBC-HS256' })
    .setSubject(`${options.host ?? '127.0.0.1'}#aisbreaker`)
    .setIssuedAt(options.iat)
    .setExpirationTime(options.iat + (options.lifetimeSeconds ?? 7200))
    .encrypt(new Uint8Array(key));
  return 'aisbreaker_' + jwt;
}

describe('legacy AIsBreaker tokens with AISBREAKER_LEGACY_KEYPHRASES set', () => {
  const clock = new ManualClock();
  const nowSeconds = (): number => Math.floor(clock.now / 1000);
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ AISBREAKER_LEGACY_KEYPHRASES: `${KEYPHRASE}  ${SECOND_KEYPHRASE}` }, { clock: clock.read });
  });
  afterAll(() => gw.close());

  it('accepts a token of the original server, with its quotas', async () => {
    const token = await legacyToken(KEYPHRASE, { iat: nowSeconds() });
    expect(tokenHeader(token)).toEqual({ ver: 'aisbreaker.org/jwt/v1', typ: 'JOSE', alg: 'dir', enc: 'A128CBC-HS256' });
    await expectServes(gw.url, token);
    const second = await useToken(gw.url, token);
    expect(second.status).toBe(200);
    expect(second.headers.get('ratelimit-remaining')).toBe('0');
    const third = await useToken(gw.url, token);
    expect(expectError(third, 429, 'RATE_LIMITED').details).toMatchObject({ scope: 'client', window: 'minute', limit: 2 });
  });

  it('accepts tokens of any configured keyphrase (space-separated)', async () => {
    await expectServes(gw.url, await legacyToken(SECOND_KEYPHRASE, { iat: nowSeconds() }));
  });

  it('shows a legacy token in tokeninfo with a stable id and no secret', async () => {
    const token = await legacyToken(KEYPHRASE, { iat: nowSeconds(), requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { requestsPerDay: 9 } }, serviceSecrets: [{ serviceId: '', authSecret: UPSTREAM_SECRET }] } });
    const first = await getJson<{ jti: string; host: string; services: string[]; requestQuotas: unknown }>(`${gw.url}/api/v1/oauth/tokeninfo`, { Authorization: `Bearer ${token}` });
    expect(first.status, first.text).toBe(200);
    expect(first.json.host).toBe('127.0.0.1');
    expect(first.json.services).toEqual(['']);
    expect(first.json.requestQuotas).toEqual({ globalRequestLimits: { requestsPerDay: 9 } });
    expect(first.text).not.toContain(UPSTREAM_SECRET);
    const again = await getJson<{ jti: string }>(`${gw.url}/api/v1/oauth/tokeninfo`, { Authorization: `Bearer ${token}` });
    expect(again.json.jti).toBe(first.json.jti);
  });

  it('keeps the host binding of legacy tokens: another host is 401 WRONG_HOST', async () => {
    expectError(await useToken(gw.url, await legacyToken(KEYPHRASE, { iat: nowSeconds(), host: 'api.aisbreaker.org' })), 401, 'WRONG_HOST');
  });

  it('refuses a legacy token of an unknown keyphrase, and a tampered one: 401 INVALID_API_KEY', async () => {
    expectError(await useToken(gw.url, await legacyToken('some-other-servers-keyphrase-xyz', { iat: nowSeconds() })), 401, 'INVALID_API_KEY');
    const token = await legacyToken(KEYPHRASE, { iat: nowSeconds() });
    const parts = token.slice(11).split('.');
    const tag = parts[4] ?? '';
    parts[4] = (tag[0] === 'A' ? 'B' : 'A') + tag.slice(1);
    expectError(await useToken(gw.url, 'aisbreaker_' + parts.join('.')), 401, 'INVALID_API_KEY');
  });

  it('accepts the payload of the original server\'s own test: full limits, an empty secret for chat:dummy, a catch-all', async () => {
    // AIsBreaker put the body's requestAuthAndQuotas into the token as it came (AisbreakerAccessKeyEncryptionUtils.test.ts)
    const token = await legacyToken(KEYPHRASE, {
      iat: nowSeconds(),
      requestAuthAndQuotas: {
        requestQuotas: {
          globalRequestLimits: { requestsPerMinute: 60, requestsPerHour: 600, requestsPerDay: 1000 },
          perClientRequestLimits: { requestsPerMinute: 6, requestsPerHour: 60, requestsPerDay: 1000 },
        },
        serviceSecrets: [
          { serviceId: 'chat:openai.com', authSecret: 'secret' },
          { serviceId: 'chat:dummy', authSecret: '' },
          { serviceId: '', authSecret: 'INVALID' },
        ],
      },
    });
    await expectServes(gw.url, token);
    const res = await useToken(gw.url, token);
    expect(res.headers.get('x-ratelimit-limit-requests')).toBe('6');
    const info = await getJson<{ services: string[] }>(`${gw.url}/api/v1/oauth/tokeninfo`, { Authorization: `Bearer ${token}` });
    expect(info.json.services).toEqual(['chat:openai.com', 'chat:dummy', '']);
    // a child of it, with the parent's (empty) secret for chat:dummy, is a working token too
    const derived = await mintRaw(gw.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:dummy' }] }, expirationTimeSpan: '10m' }, { Authorization: `Bearer ${token}` });
    expect(derived.status, derived.text).toBe(200);
    await expectServes(gw.url, derived.json.access_token);
  });

  it('accepts legacy payloads with fields it does not know (the original server kept whatever the client sent)', async () => {
    const token = await legacyToken(KEYPHRASE, {
      iat: nowSeconds(),
      requestAuthAndQuotas: {
        requestQuotas: {
          globalRequestLimits: { requestsPerMinute: 60, requestsPerHour: 600, requestsPerDay: 1000, note: 'team budget' },
          perClientRequestLimits: { requestsPerMinute: 2, requestsPerHour: 60, requestsPerDay: 1000 },
          comment: 'from the docs',
        },
        serviceSecrets: [{ serviceId: 'chat:dummy', authSecret: 'x', label: 'dummy' }],
        clientId: 'my-app',
      },
    });
    await expectServes(gw.url, token);
    // its known limits still hold
    expect((await useToken(gw.url, token)).status).toBe(200);
    expectError(await useToken(gw.url, token), 429, 'RATE_LIMITED');
  });

  it('refuses a legacy token without the AIsBreaker payload shape: 401 INVALID_API_KEY', async () => {
    const token = await legacyToken(KEYPHRASE, { iat: nowSeconds(), requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { requestsPerMinute: 0 } } } });
    expectError(await useToken(gw.url, token), 401, 'INVALID_API_KEY');
  });

  it('an expired legacy token is 401 EXPIRED_API_KEY', async () => {
    const token = await legacyToken(KEYPHRASE, { iat: nowSeconds(), lifetimeSeconds: 60 });
    await expectServes(gw.url, token);
    clock.advance(60_000);
    expectError(await useToken(gw.url, token), 401, 'EXPIRED_API_KEY');
  });

  it('a holder can revoke a legacy token', async () => {
    const token = await legacyToken(KEYPHRASE, { iat: nowSeconds() });
    await expectServes(gw.url, token);
    const res = await postForm<{ revoked: boolean }>(`${gw.url}/api/v1/oauth/revoke`, { token });
    expect(res.json.revoked).toBe(true);
    expectError(await useToken(gw.url, token), 401, 'REVOKED_API_KEY');
  });

  it('derives a child from a legacy token, which shares its quota and its revocation', async () => {
    const token = await legacyToken(KEYPHRASE, { iat: nowSeconds(), requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { requestsPerHour: 3 } }, serviceSecrets: [{ serviceId: '', authSecret: UPSTREAM_SECRET }] } });
    const derived = await mintRaw(gw.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:dummy' }] }, expirationTimeSpan: '10m' }, { Authorization: `Bearer ${token}` });
    expect(derived.status, derived.text).toBe(200);
    const child = derived.json.access_token;
    expect(tokenHeader(child).enc).toBe('A256GCM');
    await expectServes(gw.url, child);
    await expectServes(gw.url, child);
    await expectServes(gw.url, token);
    expectError(await useToken(gw.url, child), 429, 'RATE_LIMITED');
    expectError(await useToken(gw.url, token), 429, 'RATE_LIMITED');
    expect((await postForm<{ revoked: boolean }>(`${gw.url}/api/v1/oauth/revoke`, { token })).json.revoked).toBe(true);
    expectError(await useToken(gw.url, child), 401, 'REVOKED_API_KEY');
  });

  it('mints new tokens in this gateway\'s format, not the legacy one', async () => {
    const header = tokenHeader(await mint(gw.url));
    expect(header.enc).toBe('A256GCM');
    expect(typeof header.kid).toBe('string');
  });
});

describe('legacy tokens without AISBREAKER_LEGACY_KEYPHRASES', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(() => gw.close());

  it('refuses them: 401 INVALID_API_KEY', async () => {
    const token = await legacyToken(KEYPHRASE, { iat: Math.floor(Date.now() / 1000) });
    expectError(await useToken(gw.url, token), 401, 'INVALID_API_KEY');
    // and a legacy-shaped token keyed with the server's own secret as keyphrase is no way in either
    const own = await legacyToken('test-secret-0123456789-abcdefghijklmnopqrstuvwxyz', { iat: Math.floor(Date.now() / 1000) });
    expectError(await useToken(gw.url, own), 401, 'INVALID_API_KEY');
  });
});
