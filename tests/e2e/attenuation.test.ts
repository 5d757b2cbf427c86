import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../helpers/clock.js';
import { TEST_SECRET, mint, startGateway, type MintBody, type TestGateway } from '../helpers/gateway.js';
import { TestRedis } from '../helpers/redis-server.js';
import {
  expectError,
  expectInvalid,
  expectServes,
  getJson,
  mintRaw,
  postForm,
  rawRequest,
  useToken,
  type Answer,
  type MintAnswer,
  type TokenInfo,
} from '../helpers/lifecycle-helpers.js';
import { coversServiceId } from '../../src/token/claims.js';
import { openToken } from '../../src/token/codec.js';
import { Keyring } from '../../src/token/keyring.js';

const ADMIN_KEY = 'attenuation-admin-key-9a8b7c6d5e';
const ADMIN = { Authorization: `Bearer ${ADMIN_KEY}` };
const DUMMY_SECRET = 'sk-parent-dummy-secret-4242424242';
const ECHO_SECRET = 'sk-parent-echo-secret-1313131313';

const PARENT_BODY: MintBody = {
  requestAuthAndQuotas: {
    requestQuotas: {
      perClientRequestLimits: { requestsPerMinute: 10, requestsPerHour: 100 },
      globalRequestLimits: { requestsPerMinute: 20, requestsPerDay: 1000 },
    },
    serviceSecrets: [
      { serviceId: 'chat:dummy', authSecret: DUMMY_SECRET },
      { serviceId: 'chat:echo', authSecret: ECHO_SECRET },
    ],
  },
  expirationTimeSpan: '30d',
};

/** POST /api/v1/oauth/token with a token as bearer: derive a child. */
function derive(url: string, parent: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer<MintAnswer>> {
  return mintRaw(url, body, { Authorization: `Bearer ${parent}`, ...headers });
}

async function deriveOk(url: string, parent: string, body: unknown): Promise<string> {
  const res = await derive(url, parent, body);
  expect(res.status, res.text).toBe(200);
  expect(res.json.token_type).toBe('Bearer');
  return res.json.access_token;
}

async function info(url: string, token: string): Promise<TokenInfo> {
  const res = await getJson<TokenInfo>(`${url}/api/v1/oauth/tokeninfo`, { Authorization: `Bearer ${token}` });
  expect(res.status, res.text).toBe(200);
  return res.json;
}

/** The secrets inside a token, decrypted with the server's own codec and secret. */
async function secretsOf(token: string, nowMs: number): Promise<{ serviceId: string; authSecret: string }[]> {
  return (await openToken(token, new Keyring(TEST_SECRET), nowMs)).claims.serviceSecrets;
}

/** The secret a token uses for a service: its first entry whose serviceId is a prefix of it. */
/** The secret the gateway sends to `serviceId` (its first entry that covers it, as the gateway matches). */
function secretFor(secrets: { serviceId: string; authSecret: string }[], serviceId: string): string | undefined {
  return secrets.find((s) => coversServiceId(s.serviceId, serviceId))?.authSecret;
}

describe('derived tokens (attenuation)', () => {
  const clock = new ManualClock();
  let gw: TestGateway;
  let parent: string;
  let parentInfo: TokenInfo;
  beforeAll(async () => {
    gw = await startGateway({ AISBREAKER_ADMIN_KEY: ADMIN_KEY, TRUST_PROXY: 'loopback' }, { clock: clock.read });
    parent = await mint(gw.url, PARENT_BODY, ADMIN);
    parentInfo = await info(gw.url, parent);
  });
  afterAll(() => gw.close());

  it('derives a narrower child without the admin key: every limit the minimum, the parent\'s host, a link to the parent', async () => {
    const child = await deriveOk(gw.url, parent, {
      requestAuthAndQuotas: {
        requestQuotas: { perClientRequestLimits: { requestsPerMinute: 2, requestsPerDay: 50 }, globalRequestLimits: { requestsPerDay: 500 } },
        serviceSecrets: [{ serviceId: 'chat:dummy' }],
      },
      expirationTimeSpan: '1h',
    });
    const childInfo = await info(gw.url, child);
    expect(childInfo.requestQuotas).toEqual({
      // asked 2 of 10; hour not asked: the parent's 100; day: the parent has none, the child asks 50
      perClientRequestLimits: { requestsPerMinute: 2, requestsPerHour: 100, requestsPerDay: 50 },
      globalRequestLimits: { requestsPerMinute: 20, requestsPerDay: 500 },
    });
    expect(childInfo.services).toEqual(['chat:dummy']);
    expect(childInfo.host).toBe(parentInfo.host);
    expect(childInfo.exp - childInfo.iat).toBe(3600);
    expect(childInfo.parent).toBe(parentInfo.jti);
    expect(childInfo.depth).toBe(1);
    expect(childInfo.jti).not.toBe(parentInfo.jti);
    await expectServes(gw.url, child);
    expect((await useToken(gw.url, child)).status).toBe(200);
    expectError(await useToken(gw.url, child), 429, 'RATE_LIMITED'); // its own 2/minute
    await expectServes(gw.url, parent); // the parent's per-client limit is 10
  });

  it('copies the parent\'s secrets: the caller names only the service, or the same secret', async () => {
    const named = await deriveOk(gw.url, parent, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:echo' }] } });
    expect(await secretsOf(named, clock.now)).toEqual([{ serviceId: 'chat:echo', authSecret: ECHO_SECRET }]);
    // a narrower service id under the parent's prefix gets the parent's secret for it
    const narrower = await deriveOk(gw.url, parent, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:dummy/engine-1' }] } });
    expect(await secretsOf(narrower, clock.now)).toEqual([{ serviceId: 'chat:dummy/engine-1', authSecret: DUMMY_SECRET }]);
    // a caller that does know the secret may repeat it
    const repeated = await deriveOk(gw.url, parent, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:dummy', authSecret: DUMMY_SECRET }] } });
    expect(await secretsOf(repeated, clock.now)).toEqual([{ serviceId: 'chat:dummy', authSecret: DUMMY_SECRET }]);
  });

  it('omitted serviceSecrets means all of the parent\'s services, with their secrets', async () => {
    const child = await deriveOk(gw.url, parent, { requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { requestsPerMinute: 3 } } } });
    expect((await info(gw.url, child)).services).toEqual(['chat:dummy', 'chat:echo']);
    expect(await secretsOf(child, clock.now)).toEqual(PARENT_BODY.requestAuthAndQuotas.serviceSecrets);
  });

  it('never shows a secret when deriving or in the child\'s tokeninfo', async () => {
    const res = await derive(gw.url, parent, { requestAuthAndQuotas: {} });
    expect(res.text).not.toContain(DUMMY_SECRET);
    const childInfo = await getJson(`${gw.url}/api/v1/oauth/tokeninfo`, { Authorization: `Bearer ${res.json.access_token}` });
    expect(childInfo.text).not.toContain(DUMMY_SECRET);
    expect(childInfo.text).not.toContain(ECHO_SECRET);
    expect(gw.logs.join('\n')).not.toContain(DUMMY_SECRET);
  });

  it('a catch-all child of a parent with a specific and a catch-all secret uses, per service, the parent\'s secret', async () => {
    const openaiKey = 'sk-specific-openai-key-0000000000001';
    const otherKey = 'sk-catch-all-other-vendor-key-00002';
    const mixed = await mint(
      gw.url,
      {
        requestAuthAndQuotas: {
          serviceSecrets: [
            { serviceId: 'chat:openai.com', authSecret: openaiKey },
            { serviceId: '', authSecret: otherKey },
          ],
        },
      },
      ADMIN,
    );
    const parentSecrets = await secretsOf(mixed, clock.now);
    for (const body of [{ requestAuthAndQuotas: { serviceSecrets: [{ serviceId: '' }] } }, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:' }] } }]) {
      const child = await deriveOk(gw.url, mixed, body);
      const childSecrets = await secretsOf(child, clock.now);
      // the child must never send the catch-all key to a service its parent sends another key to
      // (a child asking for "chat:" gets that service id only: it covers no other at a "/")
      for (const serviceId of ['chat:openai.com', 'chat:openai.com/gpt-4o', 'chat:anthropic.com', 'chat:']) {
        const sent = secretFor(childSecrets, serviceId);
        expect([undefined, secretFor(parentSecrets, serviceId)], `${JSON.stringify(body)} ${serviceId}`).toContain(sent);
      }
      expect(secretFor(childSecrets, 'chat:'), JSON.stringify(body)).toBe(otherKey);
    }
  });

  it('caps the child\'s expiry at the parent\'s: default lifetime is cut to what the parent has left', async () => {
    const shortParent = await mint(gw.url, { requestAuthAndQuotas: {}, expirationTimeSpan: '1h' }, ADMIN);
    const byDefault = await derive(gw.url, shortParent, { requestAuthAndQuotas: {} });
    expect(byDefault.json.expires_in).toBe(3600); // default 2h, capped
    clock.advance(30 * 60 * 1000);
    const later = await derive(gw.url, shortParent, { requestAuthAndQuotas: {} });
    expect(later.json.expires_in).toBe(1800);
    expect((await derive(gw.url, shortParent, { requestAuthAndQuotas: {}, expirationTimeSpan: '10m' })).json.expires_in).toBe(600);
    const tooLong = await derive(gw.url, shortParent, { requestAuthAndQuotas: {}, expirationTimeSpan: '31m' });
    expect(expectError(tooLong, 403, 'FORBIDDEN').details?.field).toBe('expirationTimeSpan');
    // parent and children expire together
    clock.advance(30 * 60 * 1000);
    expectError(await useToken(gw.url, byDefault.json.access_token), 401, 'EXPIRED_API_KEY');
    expectError(await useToken(gw.url, later.json.access_token), 401, 'EXPIRED_API_KEY');
    expectError(await derive(gw.url, shortParent, { requestAuthAndQuotas: {} }), 401, 'EXPIRED_API_KEY');
  });

  const widenings: { name: string; body: unknown; field: string }[] = [
    {
      name: 'a higher per-client limit',
      body: { requestAuthAndQuotas: { requestQuotas: { perClientRequestLimits: { requestsPerMinute: 11 } } } },
      field: 'requestAuthAndQuotas.requestQuotas.perClientRequestLimits.requestsPerMinute',
    },
    {
      name: 'a higher per-client hour limit next to a lower minute limit',
      body: { requestAuthAndQuotas: { requestQuotas: { perClientRequestLimits: { requestsPerMinute: 1, requestsPerHour: 101 } } } },
      field: 'requestAuthAndQuotas.requestQuotas.perClientRequestLimits.requestsPerHour',
    },
    {
      name: 'a higher global limit',
      body: { requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { requestsPerDay: 1001 } } } },
      field: 'requestAuthAndQuotas.requestQuotas.globalRequestLimits.requestsPerDay',
    },
    {
      name: 'a service the parent has no secret for',
      body: { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:dummy' }, { serviceId: 'chat:openai.com' }] } },
      field: 'requestAuthAndQuotas.serviceSecrets.1.serviceId',
    },
    {
      name: 'a catch-all service id',
      body: { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: '' }] } },
      field: 'requestAuthAndQuotas.serviceSecrets.0.serviceId',
    },
    {
      name: 'a broader service prefix',
      body: { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:' }] } },
      field: 'requestAuthAndQuotas.serviceSecrets.0.serviceId',
    },
    {
      name: 'a secret of its own',
      body: { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:dummy', authSecret: 'sk-my-own-secret-instead' }] } },
      field: 'requestAuthAndQuotas.serviceSecrets.0.authSecret',
    },
    {
      name: 'a later expiry',
      body: { requestAuthAndQuotas: {}, expirationTimeSpan: '31d' },
      field: 'expirationTimeSpan',
    },
  ];
  for (const w of widenings) {
    it(`refuses ${w.name}: 403 FORBIDDEN naming ${w.field}; the parent still serves and derives`, async () => {
      const res = await derive(gw.url, parent, w.body);
      const error = expectError(res, 403, 'FORBIDDEN');
      expect(error.details?.field).toBe(w.field);
      expect(error.message).toContain(w.field);
      expect(res.text).not.toContain(DUMMY_SECRET);
      expect(res.text).not.toContain(ECHO_SECRET);
      await expectServes(gw.url, parent);
      expect((await derive(gw.url, parent, { requestAuthAndQuotas: {} })).status).toBe(200);
    });
  }

  it('refuses deriving on another host (the parent is bound to its host): 401 WRONG_HOST', async () => {
    // tokens are bound to the Host header: X-Forwarded-Host (without TRUST_FORWARDED_HOST) changes nothing
    const otherHosts: Record<string, string>[] = [{ Host: 'api.example.com' }, { Host: 'api.example.com', 'X-Forwarded-Host': '127.0.0.1' }];
    for (const headers of otherHosts) {
      const res = await rawRequest(`${gw.url}/api/v1/oauth/token`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${parent}`, ...headers },
        body: JSON.stringify({ requestAuthAndQuotas: {} }),
      });
      expect(res.status).toBe(401);
      expect((JSON.parse(res.body) as { error: { code: string } }).error.code).toBe('WRONG_HOST');
    }
  });

  it('validates the derive body like a mint body: 400 naming the field', async () => {
    expectInvalid(await derive(gw.url, parent, { requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { requestsPerMinute: -1 } } } }), 'requestAuthAndQuotas.requestQuotas.globalRequestLimits.requestsPerMinute');
    expectInvalid(await derive(gw.url, parent, { requestAuthAndQuotas: {}, expirationTimeSpan: 60 }), 'expirationTimeSpan');
    expectInvalid(await derive(gw.url, parent, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:dummy', authSecret: 1 }] } }), 'requestAuthAndQuotas.serviceSecrets.0.authSecret');
    // and an invalid parent is 401, not a mint
    expectError(await derive(gw.url, 'aisbreaker_garbage', { requestAuthAndQuotas: {} }), 401, 'INVALID_API_KEY');
  });

  it('bounds the depth: three generations below a minted token, the fourth is 403', async () => {
    const root = await mint(gw.url, { requestAuthAndQuotas: {}, expirationTimeSpan: '1d' }, ADMIN);
    let token = root;
    for (let depth = 1; depth <= 3; depth++) {
      token = await deriveOk(gw.url, token, { requestAuthAndQuotas: {} });
      expect((await info(gw.url, token)).depth).toBe(depth);
      await expectServes(gw.url, token);
    }
    const tooDeep = await derive(gw.url, token, { requestAuthAndQuotas: {} });
    const error = expectError(tooDeep, 403, 'FORBIDDEN');
    expect(error.details?.field).toBeDefined();
    expect(error.message).toMatch(/deep/);
  });

  it('revoking the parent revokes every child and grandchild; revoking a child leaves parent and siblings', async () => {
    const root = await mint(gw.url, { requestAuthAndQuotas: {}, expirationTimeSpan: '1d' }, ADMIN);
    const childA = await deriveOk(gw.url, root, { requestAuthAndQuotas: {} });
    const childB = await deriveOk(gw.url, root, { requestAuthAndQuotas: {} });
    const grandchild = await deriveOk(gw.url, childA, { requestAuthAndQuotas: {} });
    for (const t of [root, childA, childB, grandchild]) await expectServes(gw.url, t);

    expect((await postForm<{ revoked: boolean }>(`${gw.url}/api/v1/oauth/revoke`, { token: childB })).json.revoked).toBe(true);
    expectError(await useToken(gw.url, childB), 401, 'REVOKED_API_KEY');
    for (const t of [root, childA, grandchild]) await expectServes(gw.url, t);

    expect((await postForm<{ revoked: boolean }>(`${gw.url}/api/v1/oauth/revoke`, { token: root })).json.revoked).toBe(true);
    for (const t of [root, childA, grandchild]) expectError(await useToken(gw.url, t), 401, 'REVOKED_API_KEY');
    expectError(await derive(gw.url, childA, { requestAuthAndQuotas: {} }), 401, 'REVOKED_API_KEY');
    expectError(await getJson(`${gw.url}/api/v1/oauth/tokeninfo`, { Authorization: `Bearer ${grandchild}` }), 401, 'REVOKED_API_KEY');
    const introspected = await postForm<{ active: boolean }>(`${gw.url}/api/v1/oauth/introspect`, { token: grandchild }, ADMIN);
    expect(introspected.json.active).toBe(false);
    // and on the OpenAI-compatible API as well
    const chat = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${childA}` },
      body: JSON.stringify({ model: 'chat:dummy/any', messages: [{ role: 'user', content: 'Hi' }] }),
    });
    expect(chat.status).toBe(401);
    expect(((await chat.json()) as { error: { code: string } }).error.code).toBe('REVOKED_API_KEY');
  });

  it('revoking the parent by jti (admin) revokes its children too', async () => {
    const root = await mint(gw.url, { requestAuthAndQuotas: {} }, ADMIN);
    const child = await deriveOk(gw.url, root, { requestAuthAndQuotas: {} });
    await expectServes(gw.url, child);
    const { jti } = await info(gw.url, root);
    expect((await postForm<{ revoked: boolean }>(`${gw.url}/api/v1/oauth/revoke`, { jti }, ADMIN)).json.revoked).toBe(true);
    expectError(await useToken(gw.url, child), 401, 'REVOKED_API_KEY');
  });
});

/** Hierarchical quotas, on the in-process store and on a real Redis. */
for (const backend of ['memory', 'redis'] as const) {
  describe(`nested quotas (${backend})`, () => {
    let redis: TestRedis | undefined;
    let gw: TestGateway;
    beforeAll(async () => {
      if (backend === 'redis') redis = await TestRedis.start();
      gw = await startGateway({ AISBREAKER_ADMIN_KEY: ADMIN_KEY, ...(redis ? { REDIS_URL: redis.url } : {}) });
    });
    afterAll(async () => {
      await gw.close();
      await redis?.stop();
    });

    it('child requests count against the parent\'s global quota exactly, and denied requests count nowhere', async () => {
      const parent = await mint(gw.url, { requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { requestsPerDay: 6 } } } }, ADMIN);
      const parentJti = (await info(gw.url, parent)).jti;
      const childA = await deriveOk(gw.url, parent, { requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { requestsPerDay: 2 } } } });
      const childB = await deriveOk(gw.url, parent, { requestAuthAndQuotas: {} });
      const grandchild = await deriveOk(gw.url, childB, { requestAuthAndQuotas: {} });

      await expectServes(gw.url, childA);
      await expectServes(gw.url, childA);
      // childA's own global limit of 2 stops it; the refusal costs the parent nothing
      const own = expectError(await useToken(gw.url, childA), 429, 'RATE_LIMITED');
      expect(own.details).toMatchObject({ scope: 'global', window: 'day', limit: 2 });
      expect(own.details?.ancestor).toBeUndefined();
      await expectServes(gw.url, parent);
      await expectServes(gw.url, childB);
      await expectServes(gw.url, grandchild);
      // 2 + 1 + 1 + 1 = 5 of the parent's 6
      const parentUsage = (await info(gw.url, parent)).usage.find((u) => u.scope === 'global' && u.window === 'day');
      expect(parentUsage).toMatchObject({ limit: 6, used: 5, remaining: 1 });
      // the child sees the parent's counter it spends
      const childUsage = (await info(gw.url, grandchild)).usage.filter((u) => u.ancestor === parentJti);
      expect(childUsage).toEqual([expect.objectContaining({ scope: 'global', window: 'day', limit: 6, used: 5, remaining: 1 })]);

      await expectServes(gw.url, grandchild); // the sixth
      for (const t of [parent, childB, grandchild]) {
        const refused = expectError(await useToken(gw.url, t), 429, 'RATE_LIMITED');
        expect(refused.details).toMatchObject({ scope: 'global', window: 'day', limit: 6 });
        if (t !== parent) expect(refused.details?.ancestor).toBe(parentJti);
      }
      expect((await info(gw.url, parent)).usage.find((u) => u.window === 'day')).toMatchObject({ used: 6, remaining: 0 });
    });

    it('children spend the parent\'s per-client limit too: a client cannot multiply it by deriving', async () => {
      const parent = await mint(gw.url, { requestAuthAndQuotas: { requestQuotas: { perClientRequestLimits: { requestsPerMinute: 2 } } } }, ADMIN);
      const parentJti = (await info(gw.url, parent)).jti;
      await expectServes(gw.url, parent);
      const children = await Promise.all(Array.from({ length: 3 }, () => deriveOk(gw.url, parent, { requestAuthAndQuotas: {} })));
      await expectServes(gw.url, children[0] ?? '');
      // the parent's 2 per client per minute are spent: by the parent and by any child alike
      for (const t of [parent, ...children]) {
        const refused = expectError(await useToken(gw.url, t), 429, 'RATE_LIMITED');
        expect(refused.details).toMatchObject({ scope: 'client', window: 'minute', limit: 2 });
        if (t !== parent) expect(refused.details?.ancestor).toBe(parentJti);
      }
    });

    it('siblings under a parent\'s global limit admit exactly that many requests when racing', async () => {
      const parent = await mint(gw.url, { requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { requestsPerHour: 10 } } } }, ADMIN);
      const children = await Promise.all(Array.from({ length: 4 }, () => deriveOk(gw.url, parent, { requestAuthAndQuotas: {} })));
      const statuses = await Promise.all(Array.from({ length: 24 }, (_, i) => useToken(gw.url, children[i % 4], `race ${i}`).then((r) => r.status)));
      expect(statuses.filter((s) => s === 200)).toHaveLength(10);
      expect(statuses.filter((s) => s === 429)).toHaveLength(14);
    });
  });
}
