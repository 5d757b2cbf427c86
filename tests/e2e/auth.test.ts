import { EncryptJWT, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../helpers/clock.js';
import { TEST_SECRET, mint, postProcess, processBody, startGateway, type TestGateway } from '../helpers/gateway.js';
import {
  expectError,
  expectNothingLost,
  expectServes,
  getJson,
  parseError,
  rawRequest,
  tamperToken,
  tokenHeader,
  useToken,
} from '../helpers/lifecycle-helpers.js';
import { Keyring } from '../../src/token/keyring.js';

const SECRET = 'sk-auth-test-upstream-secret-31415926535';

/** Replaces one base64url char of segment `index` of the JWE (0 header, 2 iv, 3 ciphertext, 4 tag). */
function tamper(token: string, index: number, at = 5): string {
  return tamperToken(token, index, at);
}

/** A token encrypted with the server's real key but with claims of the test's choosing. */
async function forge(claims: Record<string, unknown>, secret = TEST_SECRET): Promise<string> {
  const key = new Keyring(secret).current;
  const jwe = await new EncryptJWT(claims as JWTPayload).setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: key.kid }).encrypt(await key.key);
  return 'aisbreaker_' + jwe;
}

describe('auth middleware: credentials and the 401s', () => {
  const clock = new ManualClock();
  let gw: TestGateway;
  let token: string;
  beforeAll(async () => {
    gw = await startGateway({}, { clock: clock.read });
    token = await mint(gw.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:', authSecret: SECRET }] }, expirationTimeSpan: '1h' });
  });
  afterAll(() => gw.close());

  it('missing credential: 401 MISSING_API_KEY as in the README', async () => {
    const res = await useToken(gw.url, undefined);
    const error = expectError(res, 401, 'MISSING_API_KEY');
    expect(error.type).toBe('authentication_error');
    expect(error.message).toBe(
      'no credential: send "Authorization: Bearer aisbreaker_..." or "Api-Key: ..."; mint a token with POST /api/v1/oauth/token; callers without one are served only with AISBREAKER_OPEN_ACCESS=on',
    );
  });

  it('never takes the credential from the query string', async () => {
    for (const query of ['token', 'access_token', 'api_key', 'key']) {
      const res = await fetch(`${gw.url}/api/v1/process?${query}=${encodeURIComponent(token)}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: processBody('chat:dummy', 'x'),
      });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('MISSING_API_KEY');
    }
    // nor is the query string logged
    expect(gw.logs.join('\n')).not.toContain(token.slice(20, 60));
  });

  it('accepts the token as Authorization: Bearer (any case of "Bearer") and as Api-Key', async () => {
    await expectServes(gw.url, token);
    expect((await postProcess(gw.url, undefined, processBody('chat:dummy', 'x'), { Authorization: `bearer ${token}` })).status).toBe(200);
    expect((await postProcess(gw.url, undefined, processBody('chat:dummy', 'x'), { 'Api-Key': token })).status).toBe(200);
    // both headers naming the same token is fine
    expect((await postProcess(gw.url, token, processBody('chat:dummy', 'x'), { 'Api-Key': token })).status).toBe(200);
  });

  const malformedAuthorization: [string, string][] = [
    ['a Basic scheme', 'Basic dXNlcjpwYXNz'],
    ['Bearer without a token', 'Bearer'],
    ['Bearer and blanks', 'Bearer    '],
    ['two words after Bearer', 'Bearer aisbreaker_a aisbreaker_b'],
    ['a bare token without scheme', 'aisbreaker_abc'],
    ['a token without the aisbreaker_ prefix', 'Bearer eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..a.b.c'],
    ['the prefix alone', 'Bearer aisbreaker_'],
    ['aisbreaker_garbage (README)', 'Bearer aisbreaker_garbage'],
    ['five empty JWE parts', 'Bearer aisbreaker_....'],
    ['a JWE header that is not JSON', `Bearer aisbreaker_${Buffer.from('not json').toString('base64url')}..a.b.c`],
    ['alg none', `Bearer aisbreaker_${Buffer.from('{"alg":"none","enc":"A256GCM","kid":"x"}').toString('base64url')}..a.b.c`],
    ['an unknown kid', `Bearer aisbreaker_${Buffer.from('{"alg":"dir","enc":"A256GCM","kid":"nope"}').toString('base64url')}..a.b.c`],
    ['an oversized token (9,000 chars)', `Bearer aisbreaker_${'A'.repeat(9000)}`],
    ['an oversized header (12,000 chars)', `Bearer ${'x'.repeat(12000)}`],
  ];
  for (const [name, header] of malformedAuthorization) {
    it(`refuses ${name} with 401 INVALID_API_KEY, never a 500`, async () => {
      const res = await rawRequest(`${gw.url}/api/v1/process`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: header },
        body: processBody('chat:dummy', 'x'),
      });
      expect(res.status, res.body).toBe(401);
      const error = parseError(res);
      expect(error.code).toBe('INVALID_API_KEY');
      if (header.length > 20) expect(res.body).not.toContain(header.slice(7, 40));
    });
  }

  it('refuses header bytes outside ASCII and repeated or conflicting credential headers with 401, never a 500', async () => {
    const latin1 = await rawRequest(`${gw.url}/api/v1/process`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: 'Bearer aisbreaker_\xe9\xff\xe9' },
      body: processBody('chat:dummy', 'x'),
    });
    expect(latin1.status).toBe(401);
    expect(parseError(latin1).code).toBe('INVALID_API_KEY');

    const twice = await rawRequest(`${gw.url}/api/v1/process`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: [`Bearer ${token}`, `Bearer ${token}`] },
      body: processBody('chat:dummy', 'x'),
    });
    expect(twice.status).toBe(401);
    expect(parseError(twice).code).toBe('INVALID_API_KEY');

    const conflicting = await postProcess(gw.url, token, processBody('chat:dummy', 'x'), { 'Api-Key': 'aisbreaker_other' });
    expect(conflicting.status).toBe(401);
    await expectNothingLost(gw.url);
  });

  it('refuses a tampered token (header, iv, ciphertext or tag) with 401 INVALID_API_KEY', async () => {
    for (const segment of [0, 2, 3, 4]) {
      for (const at of [0, 7, 1000]) {
        const altered = tamper(token, segment, at);
        expect(altered).not.toBe(token);
        const res = await useToken(gw.url, altered);
        expectError(res, 401, 'INVALID_API_KEY');
        expect(res.text).not.toContain(altered.slice(11, 60));
      }
    }
    // truncated, or with a part missing
    expectError(await useToken(gw.url, token.slice(0, -10)), 401, 'INVALID_API_KEY');
    expectError(await useToken(gw.url, token.split('.').slice(0, 4).join('.')), 401, 'INVALID_API_KEY');
    // the original still works: no cache confusion
    await expectServes(gw.url, token);
  });

  it('refuses a token of a server with another secret: 401 INVALID_API_KEY', async () => {
    const other = await startGateway({ AISBREAKER_SECRET: 'a-completely-different-server-secret-0123456789' });
    try {
      const foreign = await mint(other.url);
      expect(tokenHeader(foreign).kid).not.toBe(tokenHeader(token).kid);
      expectError(await useToken(gw.url, foreign), 401, 'INVALID_API_KEY');
      // even with our kid put in its header: it does not decrypt
      const header = { ...tokenHeader(foreign), kid: tokenHeader(token).kid };
      const parts = foreign.slice(11).split('.');
      parts[0] = Buffer.from(JSON.stringify(header)).toString('base64url');
      expectError(await useToken(gw.url, 'aisbreaker_' + parts.join('.')), 401, 'INVALID_API_KEY');
    } finally {
      await other.close();
    }
  });

  it('validates decrypted claims with a schema: authentic tokens with bad claims are INVALID_API_KEY', async () => {
    const now = Math.floor(clock.now / 1000);
    const good = { sub: '127.0.0.1#aisbreaker', iat: now, exp: now + 3600, jti: 'abcdefghijklmnopqrstuv', requestQuotas: {}, serviceSecrets: [] };
    // the forge is right: the good claims are served
    await expectServes(gw.url, await forge(good));
    const bad: Record<string, unknown>[] = [
      { ...good, jti: undefined },
      { ...good, jti: 'short' },
      { ...good, sub: '127.0.0.1' },
      { ...good, exp: 'tomorrow' },
      { ...good, requestQuotas: { globalRequestLimits: { requestsPerMinute: -1 } } },
      { ...good, requestQuotas: { globalRequestLimits: { requestsPerMinute: 'lots' } } },
      { ...good, serviceSecrets: [{ serviceId: 'chat:dummy', authSecret: 42 }] },
      { ...good, serviceSecrets: 'all' },
    ];
    for (const claims of bad) {
      const res = await useToken(gw.url, await forge(claims));
      expect(res.status, JSON.stringify(claims)).toBe(401);
      expect((res.json as unknown as { error: { code: string } }).error.code).toBe('INVALID_API_KEY');
    }
  });

  it('unknown service with a good token: 404 UNKNOWN_SERVICE', async () => {
    const res = await postProcess(gw.url, token, processBody('chat:no-such-service', 'x'));
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('UNKNOWN_SERVICE');
  });

  it('tells expiry apart from tampering: expired -> 401 EXPIRED_API_KEY, expired and tampered -> INVALID_API_KEY', async () => {
    const shortLived = await mint(gw.url, { requestAuthAndQuotas: {}, expirationTimeSpan: '10m' });
    await expectServes(gw.url, shortLived);
    clock.advance(10 * 60 * 1000);
    const res = await useToken(gw.url, shortLived);
    const error = expectError(res, 401, 'EXPIRED_API_KEY');
    expect(error.type).toBe('authentication_error');
    expect(res.text).not.toContain(shortLived.slice(11, 50));
    expectError(await useToken(gw.url, tamper(shortLived, 3)), 401, 'INVALID_API_KEY');
    // an expired token is expired everywhere: tokeninfo too
    expectError(await getJson(`${gw.url}/api/v1/oauth/tokeninfo`, { Authorization: `Bearer ${shortLived}` }), 401, 'EXPIRED_API_KEY');
    // the 1 h token minted at the start still has 50 min
    await expectServes(gw.url, token);
    clock.advance(50 * 60 * 1000);
    expectError(await useToken(gw.url, token), 401, 'EXPIRED_API_KEY');
  });

  it('puts no token and no upstream secret in any log line', () => {
    const logs = gw.logs.join('\n');
    expect(logs.length).toBeGreaterThan(0);
    expect(logs).not.toContain(token.slice(11));
    expect(logs).not.toContain(SECRET);
    expect(logs).not.toContain(TEST_SECRET);
  });
});
