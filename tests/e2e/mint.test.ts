import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../helpers/clock.js';
import { mint, startGateway, type TestGateway } from '../helpers/gateway.js';
import {
  AISBREAKER_DOCS_MINT_BODY,
  DOCS_MINT_BODY,
  expectError,
  expectInvalid,
  expectNothingLost,
  expectServes,
  getJson,
  mintRaw,
  postRaw,
  tamperToken,
  tokenHeader,
  useToken,
  type Answer,
} from '../helpers/lifecycle-helpers.js';

const OPENAI_SECRET = 'sk-mint-test-secret-9f8e7d6c5b4a39281706';

function withLimits(scope: 'perClientRequestLimits' | 'globalRequestLimits', limits: Record<string, unknown>): unknown {
  return { requestAuthAndQuotas: { requestQuotas: { [scope]: limits } } };
}

describe('POST /api/v1/oauth/token: minting (open, as on AIsBreaker)', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(() => gw.close());

  it('mints the AIsBreaker docs body and the token answers on /api/v1/process with chat:dummy', async () => {
    const res = await mintRaw(gw.url, DOCS_MINT_BODY);
    expect(res.status, res.text).toBe(200);
    expect(Object.keys(res.json).sort()).toEqual(['access_token', 'expires_in', 'token_type']);
    expect(res.json.token_type).toBe('Bearer');
    expect(res.json.expires_in).toBe(30 * 24 * 3600);
    expect(res.json.access_token).toMatch(/^aisbreaker_[A-Za-z0-9_-]+\.\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);

    const used = await useToken(gw.url, res.json.access_token, 'Hello');
    expect(used.status, used.text).toBe(200);
    expect(used.json.outputs).toEqual([{ text: { index: 0, role: 'assistant', content: "Hello, the answer to 'Hello' from DummyAssistantService is unknown ..." } }]);
    expect(typeof used.json.conversationState).toBe('string');
    // the docs token carries quotas: the answer reports them
    expect(used.headers.get('x-ratelimit-limit-requests')).toBe('10');
  });

  it('mints the body of the curl in the AIsBreaker docs (empty secret for chat:dummy, {{secret}}, catch-all) and the token answers with chat:dummy', async () => {
    const res = await mintRaw(gw.url, AISBREAKER_DOCS_MINT_BODY);
    expect(res.status, res.text).toBe(200);
    expect(res.json.token_type).toBe('Bearer');
    expect(res.json.expires_in).toBe(365 * 24 * 3600);
    const used = await useToken(gw.url, res.json.access_token, 'Hello');
    expect(used.status, used.text).toBe(200);
    expect(used.json.outputs[0]?.text.content).toBe("Hello, the answer to 'Hello' from DummyAssistantService is unknown ...");
    expect(used.headers.get('x-ratelimit-limit-requests')).toBe('60');
    const info = await getJson<{ services: string[] }>(`${gw.url}/api/v1/oauth/tokeninfo`, { Authorization: `Bearer ${res.json.access_token}` });
    expect(info.json.services).toEqual(['aisbreaker:network', 'chat:openai.com', 'chat:dummy', '']);
    expect(info.text).not.toContain('sk-docs-openai-key');
    expect(info.text).not.toContain('INVALID');
  });

  it('streams chat:dummy word by word with the minted token (event: progress ... event: final)', async () => {
    const token = await mint(gw.url, DOCS_MINT_BODY);
    const res = await fetch(`${gw.url}/api/v1/process`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      body: JSON.stringify({ service: { serviceId: 'chat:dummy' }, request: { inputs: [{ text: { role: 'user', content: 'Hi' } }], stream: true } }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const text = await res.text();
    const events = [...text.matchAll(/^event: (\w+)$/gm)].map((m) => m[1]);
    expect(events.filter((e) => e === 'progress').length).toBe("Hello, the answer to 'Hi' from DummyAssistantService is unknown ...".split(' ').length);
    expect(events.at(-1)).toBe('final');
  });

  it('answers the README example error: a negative limit is 400 INVALID_REQUEST naming the field', async () => {
    const res = await mintRaw(gw.url, withLimits('globalRequestLimits', { requestsPerMinute: -1 }));
    const error = expectInvalid(res, 'requestAuthAndQuotas.requestQuotas.globalRequestLimits.requestsPerMinute');
    expect(error.message).toBe('requestAuthAndQuotas.requestQuotas.globalRequestLimits.requestsPerMinute: must be a positive integer');
    expect(error.type).toBe('invalid_request_error');
    await expectNothingLost(gw.url);
  });

  const invalidBodies: { name: string; send: (url: string) => Promise<Answer>; field: string; mention?: string }[] = [
    { name: 'text/plain content type', send: (url) => postRaw(`${url}/api/v1/oauth/token`, '{}', 'text/plain'), field: 'Content-Type' },
    { name: 'no content type', send: (url) => postRaw(`${url}/api/v1/oauth/token`, '{"requestAuthAndQuotas":{}}', undefined), field: 'Content-Type' },
    { name: 'form content type', send: (url) => postRaw(`${url}/api/v1/oauth/token`, 'a=b', 'application/x-www-form-urlencoded'), field: 'Content-Type' },
    { name: 'malformed JSON', send: (url) => postRaw(`${url}/api/v1/oauth/token`, '{"requestAuthAndQuotas": {', 'application/json'), field: '(body)' },
    { name: 'a JSON array', send: (url) => postRaw(`${url}/api/v1/oauth/token`, '[]', 'application/json'), field: '(body)' },
    { name: 'a JSON string', send: (url) => postRaw(`${url}/api/v1/oauth/token`, '"x"', 'application/json'), field: '(body)' },
    { name: 'an empty object', send: (url) => mintRaw(url, {}), field: 'requestAuthAndQuotas' },
    { name: 'requestAuthAndQuotas not an object', send: (url) => mintRaw(url, { requestAuthAndQuotas: 'all' }), field: 'requestAuthAndQuotas' },
    { name: 'a zero limit', send: (url) => mintRaw(url, withLimits('perClientRequestLimits', { requestsPerHour: 0 })), field: 'requestAuthAndQuotas.requestQuotas.perClientRequestLimits.requestsPerHour' },
    { name: 'a negative limit', send: (url) => mintRaw(url, withLimits('perClientRequestLimits', { requestsPerMinute: -5 })), field: 'requestAuthAndQuotas.requestQuotas.perClientRequestLimits.requestsPerMinute' },
    { name: 'a non-integer limit', send: (url) => mintRaw(url, withLimits('globalRequestLimits', { requestsPerDay: 1.5 })), field: 'requestAuthAndQuotas.requestQuotas.globalRequestLimits.requestsPerDay' },
    { name: 'a string limit', send: (url) => mintRaw(url, withLimits('globalRequestLimits', { requestsPerHour: '10' })), field: 'requestAuthAndQuotas.requestQuotas.globalRequestLimits.requestsPerHour' },
    { name: 'a null limit', send: (url) => mintRaw(url, withLimits('globalRequestLimits', { requestsPerHour: null })), field: 'requestAuthAndQuotas.requestQuotas.globalRequestLimits.requestsPerHour' },
    { name: 'an absurdly large limit', send: (url) => mintRaw(url, withLimits('globalRequestLimits', { requestsPerHour: 1e12 })), field: 'requestAuthAndQuotas.requestQuotas.globalRequestLimits.requestsPerHour' },
    {
      name: 'a misspelt window (would silently lift a limit)',
      send: (url) => mintRaw(url, withLimits('globalRequestLimits', { requestsPerMinutes: 5 })),
      field: 'requestAuthAndQuotas.requestQuotas.globalRequestLimits',
      mention: 'requestsPerMinutes',
    },
    {
      name: 'an unknown quota scope',
      send: (url) => mintRaw(url, { requestAuthAndQuotas: { requestQuotas: { perUserRequestLimits: { requestsPerMinute: 1 } } } }),
      field: 'requestAuthAndQuotas.requestQuotas',
      mention: 'perUserRequestLimits',
    },
    {
      name: 'an unknown field in requestAuthAndQuotas',
      send: (url) => mintRaw(url, { requestAuthAndQuotas: { requestQuotas: {}, unlimited: true } }),
      field: 'requestAuthAndQuotas',
      mention: 'unlimited',
    },
    {
      name: 'a non-string secret',
      send: (url) => mintRaw(url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: 12345 }] } }),
      field: 'requestAuthAndQuotas.serviceSecrets.0.authSecret',
    },
    {
      name: 'a missing secret (only a derived token may omit it)',
      send: (url) => mintRaw(url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:openai.com' }] } }),
      field: 'requestAuthAndQuotas.serviceSecrets.0.authSecret',
    },
    {
      name: 'a secret of the wrong type in the second entry',
      send: (url) => mintRaw(url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:dummy', authSecret: 'ok' }, { serviceId: 'chat:openai.com', authSecret: null }] } }),
      field: 'requestAuthAndQuotas.serviceSecrets.1.authSecret',
    },
    {
      name: 'an oversized secret',
      send: (url) => mintRaw(url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: 'k'.repeat(2049) }] } }),
      field: 'requestAuthAndQuotas.serviceSecrets.0.authSecret',
    },
    {
      name: 'a non-string serviceId',
      send: (url) => mintRaw(url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 7, authSecret: OPENAI_SECRET }] } }),
      field: 'requestAuthAndQuotas.serviceSecrets.0.serviceId',
    },
    { name: 'serviceSecrets not an array', send: (url) => mintRaw(url, { requestAuthAndQuotas: { serviceSecrets: { serviceId: 'x' } } }), field: 'requestAuthAndQuotas.serviceSecrets' },
    {
      name: 'too many secrets',
      send: (url) => mintRaw(url, { requestAuthAndQuotas: { serviceSecrets: Array.from({ length: 17 }, (_, i) => ({ serviceId: `chat:s${i}`, authSecret: OPENAI_SECRET })) } }),
      field: 'requestAuthAndQuotas.serviceSecrets',
    },
    { name: 'an unknown time span', send: (url) => mintRaw(url, { requestAuthAndQuotas: {}, expirationTimeSpan: 'forever' }), field: 'expirationTimeSpan' },
    { name: 'a numeric time span', send: (url) => mintRaw(url, { requestAuthAndQuotas: {}, expirationTimeSpan: 3600 }), field: 'expirationTimeSpan' },
    { name: 'a bare number as a string', send: (url) => mintRaw(url, { requestAuthAndQuotas: {}, expirationTimeSpan: '3600' }), field: 'expirationTimeSpan' },
    { name: 'a negative time span', send: (url) => mintRaw(url, { requestAuthAndQuotas: {}, expirationTimeSpan: '-2h' }), field: 'expirationTimeSpan' },
    { name: 'a zero time span', send: (url) => mintRaw(url, { requestAuthAndQuotas: {}, expirationTimeSpan: '0s' }), field: 'expirationTimeSpan' },
    { name: 'an empty time span', send: (url) => mintRaw(url, { requestAuthAndQuotas: {}, expirationTimeSpan: '' }), field: 'expirationTimeSpan' },
    { name: 'a lifetime above the default maximum of 365d', send: (url) => mintRaw(url, { requestAuthAndQuotas: {}, expirationTimeSpan: '366d' }), field: 'expirationTimeSpan' },
  ];

  for (const c of invalidBodies) {
    it(`refuses ${c.name}: 400 INVALID_REQUEST naming ${c.field}, then still mints and serves`, async () => {
      const fixed = await c.send(gw.url);
      const error = expectInvalid(fixed, c.field);
      if (c.mention) expect(error.message).toContain(c.mention);
      expect(fixed.text).not.toContain(OPENAI_SECRET);
      expect(fixed.text).not.toContain('aisbreaker_');
      await expectNothingLost(gw.url);
    });
  }

  it('names the maximum when the lifetime is too long', async () => {
    const res = await mintRaw(gw.url, { requestAuthAndQuotas: {}, expirationTimeSpan: '400 days' });
    const error = expectInvalid(res, 'expirationTimeSpan');
    expect(error.details?.maxSeconds).toBe(365 * 24 * 3600);
  });

  it('accepts the ms spans of the docs: "365d", "90 days", "2h", "30m"', async () => {
    for (const [span, seconds] of [
      ['365d', 365 * 86400],
      ['90 days', 90 * 86400],
      ['2h', 7200],
      ['30m', 1800],
    ] as const) {
      const res = await mintRaw(gw.url, { requestAuthAndQuotas: {}, expirationTimeSpan: span });
      expect(res.status, res.text).toBe(200);
      expect(res.json.expires_in).toBe(seconds);
    }
  });

  it('answers 413 PAYLOAD_TOO_LARGE for a body over the limit, then still mints and serves', async () => {
    const huge = JSON.stringify({ requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:x', authSecret: 'y'.repeat(200_000) }] } });
    const res = await postRaw(`${gw.url}/api/v1/oauth/token`, huge, 'application/json');
    expectError(res, 413, 'PAYLOAD_TOO_LARGE');
    expect(res.text.length).toBeLessThan(1000);
    await expectNothingLost(gw.url);
  });

  it('refuses secrets that would make the token too long for a header, naming serviceSecrets', async () => {
    const serviceSecrets = Array.from({ length: 16 }, (_, i) => ({ serviceId: `chat:service-${i}`, authSecret: `${i}`.padEnd(2000, 'k') }));
    const res = await mintRaw(gw.url, { requestAuthAndQuotas: { serviceSecrets } });
    expectInvalid(res, 'requestAuthAndQuotas.serviceSecrets');
    await expectNothingLost(gw.url);
  });

  it('keeps limits partial: only the named window of the named scope is limited', async () => {
    const token = await mint(gw.url, { requestAuthAndQuotas: { requestQuotas: { perClientRequestLimits: { requestsPerHour: 2 } } } });
    expect((await useToken(gw.url, token)).status).toBe(200);
    const second = await useToken(gw.url, token);
    expect(second.status).toBe(200);
    expect(second.headers.get('ratelimit-limit')).toBe('2');
    expect(second.headers.get('ratelimit-remaining')).toBe('0');
    const third = await useToken(gw.url, token);
    const error = expectError(third, 429, 'RATE_LIMITED');
    expect(error.details).toMatchObject({ scope: 'client', window: 'hour', limit: 2 });
    expect(Number(third.headers.get('retry-after'))).toBeGreaterThan(0);

    const info = await getJson<{ requestQuotas: unknown; usage: { scope: string; window: string }[] }>(`${gw.url}/api/v1/oauth/tokeninfo`, {
      Authorization: `Bearer ${token}`,
    });
    expect(info.json.requestQuotas).toEqual({ perClientRequestLimits: { requestsPerHour: 2 } });
    expect(info.json.usage.map((u) => `${u.scope}/${u.window}`)).toEqual(['client/hour']);
  });

  it('mints an unlimited token from an empty requestAuthAndQuotas: no window limits it', async () => {
    const token = await mint(gw.url, { requestAuthAndQuotas: {} });
    for (let i = 0; i < 5; i++) expect((await useToken(gw.url, token)).status).toBe(200);
    const res = await useToken(gw.url, token);
    expect(res.headers.get('ratelimit-limit')).toBeNull();
  });

  it('ignores unknown top-level OAuth fields (grant_type, clientId) as AIsBreaker does', async () => {
    const res = await mintRaw(gw.url, { requestAuthAndQuotas: {}, grant_type: 'client_credentials', clientId: 'my-app' });
    expect(res.status, res.text).toBe(200);
    await expectServes(gw.url, res.json.access_token);
  });

  it('gives two tokens with identical claims different strings and different ids (jti)', async () => {
    const body = { requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { requestsPerDay: 5 } } }, expirationTimeSpan: '1h' };
    const [a, b] = await Promise.all([mint(gw.url, body), mint(gw.url, body)]);
    expect(a).not.toBe(b);
    const infoA = await getJson<{ jti: string }>(`${gw.url}/api/v1/oauth/tokeninfo`, { Authorization: `Bearer ${a}` });
    const infoB = await getJson<{ jti: string }>(`${gw.url}/api/v1/oauth/tokeninfo`, { Authorization: `Bearer ${b}` });
    expect(infoA.json.jti).toMatch(/^[A-Za-z0-9_-]{22}$/); // 128 random bits
    expect(infoA.json.jti).not.toBe(infoB.json.jti);
    // and they do not share counters: a's use leaves b's quota untouched
    await useToken(gw.url, a);
    const usageB = await getJson<{ usage: { used: number }[] }>(`${gw.url}/api/v1/oauth/tokeninfo`, { Authorization: `Bearer ${b}` });
    expect(usageB.json.usage[0]?.used).toBe(0);
  });

  it('token format: aisbreaker_ + JWE compact with alg dir, enc A256GCM and a kid; claims unreadable without the secret', async () => {
    const token = await mint(gw.url, {
      requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { requestsPerMinute: 77 } }, serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: OPENAI_SECRET }] },
    });
    const header = tokenHeader(token);
    expect(header.alg).toBe('dir');
    expect(header.enc).toBe('A256GCM');
    expect(typeof header.kid).toBe('string');
    expect(header.kid).not.toBe('');
    const parts = token.slice('aisbreaker_'.length).split('.');
    expect(parts).toHaveLength(5);
    expect(parts[1]).toBe(''); // dir: no encrypted key
    const visible = parts.map((p) => Buffer.from(p, 'base64url').toString('latin1')).join(' ');
    for (const hidden of [OPENAI_SECRET, 'requestQuotas', 'serviceSecrets', 'chat:openai.com', '127.0.0.1#aisbreaker', 'requestsPerMinute']) {
      expect(visible).not.toContain(hidden);
      expect(token).not.toContain(Buffer.from(hidden).toString('base64url').slice(0, 12));
    }
    // the kid names the secret without being it
    expect(JSON.stringify(header)).not.toContain('test-secret');
    // the same server puts the same kid on every token
    expect(tokenHeader(await mint(gw.url)).kid).toBe(header.kid);
  });

  it('never logs a token, a secret or a mint body; logs only a fingerprint', async () => {
    const secret = 'sk-never-log-me-0123456789abcdef0123';
    const res = await mintRaw(gw.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: '', authSecret: secret }] }, clientSecret: 'also-never-logged-client-secret' });
    expect(res.status, res.text).toBe(200);
    const token = res.json.access_token;
    // first sight and a cached open: both access lines name the token by its fingerprint
    expect((await useToken(gw.url, token, 'log test')).status).toBe(200);
    expect((await useToken(gw.url, token, 'log test again')).status).toBe(200);
    // a failing request with the token's tail altered, and one with a bad body
    const tampered = tamperToken(token);
    expect((await useToken(gw.url, tampered)).status).toBe(401);
    expect((await mintRaw(gw.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'x', authSecret: secret }], extra: 1 } })).status).toBe(400);
    const logs = gw.logs.join('\n');
    const fingerprintOf = (credential: string): string => createHash('sha256').update(credential).digest('hex').slice(0, 8);
    const accessLines = gw.logs.flatMap((line) => line.split('\n')).filter((line) => line.includes('"msg":"request"')).map((line) => JSON.parse(line) as { credential?: string; status: number });
    expect(accessLines.filter((line) => line.credential === fingerprintOf(token) && line.status === 200)).toHaveLength(2);
    expect(accessLines.filter((line) => line.credential === fingerprintOf(tampered) && line.status === 401)).toHaveLength(1);
    expect(logs).toContain('token minted');
    for (const hidden of [secret, token, token.slice('aisbreaker_'.length), token.slice(-40), 'also-never-logged-client-secret', 'test-secret-0123456789']) {
      expect(logs).not.toContain(hidden);
    }
  });
});

describe('default expiry (2h) under a manual clock', () => {
  const clock = new ManualClock();
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({}, { clock: clock.read });
  });
  afterAll(() => gw.close());

  it('a token minted without expirationTimeSpan lives exactly 2 h, then 401 EXPIRED_API_KEY', async () => {
    const res = await mintRaw(gw.url, { requestAuthAndQuotas: {} });
    expect(res.json.expires_in).toBe(7200);
    const token = res.json.access_token;
    const info = await getJson<{ iat: number; exp: number }>(`${gw.url}/api/v1/oauth/tokeninfo`, { Authorization: `Bearer ${token}` });
    expect(info.json.iat).toBe(Math.floor(clock.now / 1000));
    expect(info.json.exp - info.json.iat).toBe(7200);

    clock.advance(7200 * 1000 - 1000);
    await expectServes(gw.url, token);
    clock.advance(1000);
    const expired = await useToken(gw.url, token);
    expectError(expired, 401, 'EXPIRED_API_KEY');
    expect(expired.text).not.toContain(token);
    // still serving others
    await expectNothingLost(gw.url);
  });
});

describe('AISBREAKER_MAX_TOKEN_LIFETIME', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ AISBREAKER_MAX_TOKEN_LIFETIME: '1d' });
  });
  afterAll(() => gw.close());

  it('caps expirationTimeSpan at the configured lifetime', async () => {
    expect((await mintRaw(gw.url, { requestAuthAndQuotas: {}, expirationTimeSpan: '24h' })).json.expires_in).toBe(86400);
    const res = await mintRaw(gw.url, { requestAuthAndQuotas: {}, expirationTimeSpan: '25h' });
    const error = expectInvalid(res, 'expirationTimeSpan');
    expect(error.details?.maxSeconds).toBe(86400);
    expectInvalid(await mintRaw(gw.url, { requestAuthAndQuotas: {}, expirationTimeSpan: '30d' }), 'expirationTimeSpan');
    await expectNothingLost(gw.url);
  });
});

describe('AISBREAKER_ADMIN_KEY set: minting needs it', () => {
  const ADMIN_KEY = 'admin-key-for-tests-7c1f0b9e2d';
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ AISBREAKER_ADMIN_KEY: ADMIN_KEY });
  });
  afterAll(() => gw.close());

  it('refuses minting without the key: 403 FORBIDDEN', async () => {
    const res = await mintRaw(gw.url, DOCS_MINT_BODY);
    const error = expectError(res, 403, 'FORBIDDEN');
    expect(error.message).toContain('admin key');
  });

  it('refuses a wrong key as bearer, as Api-Key and as clientSecret, and a key differing in one char or length', async () => {
    for (const wrong of ['not-the-admin-key-at-all', ADMIN_KEY.slice(0, -1) + 'x', ADMIN_KEY + 'x', ADMIN_KEY.slice(0, -1)]) {
      const asBearer = await mintRaw(gw.url, DOCS_MINT_BODY, { Authorization: `Bearer ${wrong}` });
      expectError(asBearer, 403, 'FORBIDDEN');
      expect(asBearer.text).not.toContain(wrong);
      expectError(await mintRaw(gw.url, DOCS_MINT_BODY, { 'Api-Key': wrong }), 403, 'FORBIDDEN');
      const asClientSecret = await mintRaw(gw.url, { ...DOCS_MINT_BODY, clientId: 'ops', clientSecret: wrong });
      expectError(asClientSecret, 403, 'FORBIDDEN');
      expect(asClientSecret.text).not.toContain(wrong);
    }
  });

  it('mints with the key as Authorization: Bearer', async () => {
    const res = await mintRaw(gw.url, DOCS_MINT_BODY, { Authorization: `Bearer ${ADMIN_KEY}` });
    expect(res.status, res.text).toBe(200);
    await expectServes(gw.url, res.json.access_token);
  });

  it('mints with the key as clientSecret (OAuth client credentials)', async () => {
    const res = await mintRaw(gw.url, { ...DOCS_MINT_BODY, grant_type: 'client_credentials', clientId: 'ops', clientSecret: ADMIN_KEY });
    expect(res.status, res.text).toBe(200);
    await expectServes(gw.url, res.json.access_token);
  });

  it('a wrong bearer is not rescued by a right clientSecret (the header is what was presented)', async () => {
    const res = await mintRaw(gw.url, { ...DOCS_MINT_BODY, clientSecret: ADMIN_KEY }, { Authorization: 'Bearer wrong-admin-key-000000' });
    expectError(res, 403, 'FORBIDDEN');
  });

  it('never logs the admin key', async () => {
    await mintRaw(gw.url, DOCS_MINT_BODY, { Authorization: `Bearer ${ADMIN_KEY}` });
    await mintRaw(gw.url, { ...DOCS_MINT_BODY, clientSecret: ADMIN_KEY });
    expect(gw.logs.length).toBeGreaterThan(0);
    expect(gw.logs.join('\n')).not.toContain(ADMIN_KEY);
    expect(gw.logs.join('\n')).not.toContain(DOCS_MINT_BODY.requestAuthAndQuotas.serviceSecrets[0]?.authSecret ?? 'unreachable');
  });

  it('still serves after refusals', async () => {
    await expectNothingLost(gw.url, { Authorization: `Bearer ${ADMIN_KEY}` });
  });
});
