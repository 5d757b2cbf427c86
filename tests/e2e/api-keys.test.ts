import { createHash } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../helpers/clock.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { expectError, expectInvalid, getJson, mintRaw, postForm, useToken, type Answer } from '../helpers/lifecycle-helpers.js';

/**
 * API keys as users of an AI platform expect them: error details, names, scopes, an expiry
 * notice and an audit trail, for minted tokens and operator keys alike.
 */

const ADMIN_KEY = 'conventions-admin-key-0123456789abcdef';
const OPS_KEY_1 = 'ops-admin-key-one-0123456789abcdefgh';
const OPS_KEY_2 = 'ops-admin-key-two-0123456789abcdefgh';
const APP_KEY = 'app-inference-key-0123456789abcdefgh';
const DASHBOARD_KEY = 'dashboard-read-key-0123456789abcdefg';
const SOON_KEY = 'expires-soon-key-0123456789abcdefghi';
const EXPIRED_KEY = 'expired-key-0123456789abcdefghijklmn';
const OPENAI_SECRET = 'sk-conventions-upstream-secret-0123456789';
const NOW = Date.UTC(2030, 0, 1, 12, 0, 0);

const fingerprint = (credential: string): string => createHash('sha256').update(credential).digest('hex').slice(0, 8);
const bearer = (credential: string): Record<string, string> => ({ Authorization: `Bearer ${credential}` });

interface LogLine {
  msg?: string;
  audit?: boolean;
  event?: string;
  level?: number;
  [field: string]: unknown;
}
const linesOf = (gw: TestGateway): LogLine[] => gw.logs.map((l) => JSON.parse(l) as LogLine);
const auditLines = (gw: TestGateway, event: string): LogLine[] => linesOf(gw).filter((l) => l.audit === true && l.event === event);

function configWith(keys: Record<string, unknown>): string {
  return JSON.stringify({ keys, roles: { any: { limits: { 'chat:dummy': {}, 'chat:echo': {} } } } });
}

const KEYS = {
  [OPS_KEY_1]: { project: 'Ops', role: 'any', name: 'ops-1', description: 'first admin key', scopes: ['admin'] },
  [OPS_KEY_2]: { project: 'Ops', role: 'any', name: 'ops-2', scopes: ['admin'] },
  [APP_KEY]: { project: 'App', role: 'any', name: 'backend' },
  [DASHBOARD_KEY]: { project: 'Ops', role: 'any', name: 'grafana', scopes: ['analytics:read'] },
  [SOON_KEY]: { project: 'App', role: 'any', name: 'soon', expiresAt: '2030-01-03T12:00:00Z' },
  [EXPIRED_KEY]: { project: 'App', role: 'any', name: 'old', expiresAt: '2029-12-31' },
};

async function mintToken(gw: TestGateway, body: Record<string, unknown>, headers: Record<string, string> = bearer(ADMIN_KEY)): Promise<string> {
  const res = await mintRaw(gw.url, { requestAuthAndQuotas: {}, ...body }, headers);
  expect(res.status, res.text).toBe(200);
  return res.json.access_token;
}

function chat(gw: TestGateway, credential: string): Promise<Answer> {
  return fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...bearer(credential) },
    body: JSON.stringify({ model: 'chat:dummy', messages: [{ role: 'user', content: 'hi' }] }),
  }).then(async (res) => ({ status: res.status, headers: res.headers, text: await res.text(), json: undefined }));
}

describe('API keys: details, names, scopes, expiry notice, audit trail', () => {
  const clock = new ManualClock(NOW);
  let dir: string;
  let path: string;
  let gw: TestGateway;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'aisbgw-conventions-'));
    path = join(dir, 'config.json');
    writeFileSync(path, configWith(KEYS));
    gw = await startGateway({ AISBREAKER_ADMIN_KEY: ADMIN_KEY, AISBREAKER_CONFIG: path, METRICS_AUTH: 'on' }, { clock: clock.read });
  });
  afterAll(async () => {
    await gw.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('error details', () => {
    it('MISSING_API_KEY names the header', async () => {
      expect(expectError(await useToken(gw.url, undefined), 401, 'MISSING_API_KEY').details).toEqual({ header: 'Authorization' });
    });

    it('INVALID_API_KEY carries the credential\'s fingerprint as key_id, never the credential', async () => {
      for (const credential of ['aisbreaker_not-a-token', 'sk-not-an-operator-key-0123456789']) {
        const res = await useToken(gw.url, credential);
        expect(expectError(res, 401, 'INVALID_API_KEY').details).toEqual({ key_id: fingerprint(credential) });
        expect(res.text).not.toContain(credential);
      }
    });

    it('EXPIRED_API_KEY carries expired_at, for tokens (opened before or not) and operator keys', async () => {
      const token = await mintToken(gw, { expirationTimeSpan: '1h' });
      const fresh = await mintToken(gw, { expirationTimeSpan: '1h' });
      expect((await useToken(gw.url, token)).status).toBe(200);
      clock.advance(3600_000);
      const expiredAt = new Date(NOW + 3600_000).toISOString();
      try {
        expect(expectError(await useToken(gw.url, token), 401, 'EXPIRED_API_KEY').details).toEqual({ expired_at: expiredAt });
        expect(expectError(await useToken(gw.url, fresh), 401, 'EXPIRED_API_KEY').details).toEqual({ expired_at: expiredAt });
      } finally {
        clock.advance(-3600_000);
      }
      expect(expectError(await useToken(gw.url, EXPIRED_KEY), 401, 'EXPIRED_API_KEY').details).toEqual({ expired_at: '2029-12-31T00:00:00.000Z' });
    });
  });

  describe('names', () => {
    it('a minted token carries its name and description into tokeninfo, introspection and the log; a child names its own', async () => {
      const token = await mintToken(gw, { name: 'ci-runner', description: 'nightly builds' });
      const info = await getJson<{ name: string; description: string }>(`${gw.url}/api/v1/oauth/tokeninfo`, bearer(token));
      expect(info.json).toMatchObject({ name: 'ci-runner', description: 'nightly builds' });
      const introspected = await postForm<{ name: string }>(`${gw.url}/api/v1/oauth/introspect`, { token }, bearer(ADMIN_KEY));
      expect(introspected.json.name).toBe('ci-runner');
      expect((await useToken(gw.url, token)).status).toBe(200);
      expect(linesOf(gw).some((l) => l.msg === 'request' && l.name === 'ci-runner' && l.status === 200)).toBe(true);

      const child = await mintToken(gw, { name: 'ci-runner/job-7' }, bearer(token));
      const childInfo = await getJson<{ name: string; description?: string }>(`${gw.url}/api/v1/oauth/tokeninfo`, bearer(child));
      expect(childInfo.json.name).toBe('ci-runner/job-7');
      expect(childInfo.json.description).toBeUndefined();
      const unnamed = await mintToken(gw, {}, bearer(token));
      expect((await getJson<{ name?: string }>(`${gw.url}/api/v1/oauth/tokeninfo`, bearer(unnamed))).json.name).toBeUndefined();
    });

    it('an operator key\'s name is in the access log, never the key', async () => {
      expect((await useToken(gw.url, APP_KEY)).status).toBe(200);
      expect(linesOf(gw).some((l) => l.msg === 'request' && l.name === 'backend' && l.project === 'App')).toBe(true);
      expect(gw.logs.join('\n')).not.toContain(APP_KEY);
    });

    it('refuses a bad name, description or scope at minting, naming the field', async () => {
      const cases: [Record<string, unknown>, string][] = [
        [{ name: 'line\nbreak' }, 'name'],
        [{ name: '' }, 'name'],
        [{ name: 'x'.repeat(65) }, 'name'],
        [{ name: 42 }, 'name'],
        [{ description: 'd'.repeat(257) }, 'description'],
        [{ description: 'tab\there' }, 'description'],
        [{ scopes: ['inference', 'write'] }, 'scopes.1'],
        [{ scopes: [] }, 'scopes'],
        [{ scopes: 'inference' }, 'scopes'],
        [{ scopes: ['inference', 'inference'] }, 'scopes'],
      ];
      for (const [body, field] of cases) expectInvalid(await mintRaw(gw.url, { requestAuthAndQuotas: {}, ...body }, bearer(ADMIN_KEY)), field);
    });
  });

  describe('scopes', () => {
    it('a token has inference and analytics:read unless it names fewer; outside its scopes it gets 403 naming the scope', async () => {
      const full = await mintToken(gw, {});
      expect((await getJson<{ scopes: string[] }>(`${gw.url}/api/v1/oauth/tokeninfo`, bearer(full))).json.scopes).toEqual(['inference', 'analytics:read']);

      const readOnly = await mintToken(gw, { scopes: ['analytics:read'] });
      for (const res of [await useToken(gw.url, readOnly), await chat(gw, readOnly), await getJson(`${gw.url}/v1/models`, bearer(readOnly))]) {
        expect(res.status).toBe(403);
        expect((JSON.parse(res.text) as { error: { code: string; details: unknown } }).error).toMatchObject({ code: 'FORBIDDEN', details: { scope: 'inference' } });
      }
      expect((await getJson(`${gw.url}/api/v1/oauth/tokeninfo`, bearer(readOnly))).status).toBe(200);
      expect((await getJson(`${gw.url}/v1/deployments/chat:dummy/limits`, bearer(readOnly))).status).toBe(200);

      const inferenceOnly = await mintToken(gw, { scopes: ['inference'] });
      expect((await useToken(gw.url, inferenceOnly)).status).toBe(200);
      expect(expectError(await getJson(`${gw.url}/api/v1/oauth/tokeninfo`, bearer(inferenceOnly)), 403, 'FORBIDDEN').details).toEqual({ scope: 'analytics:read' });
      expect(expectError(await getJson(`${gw.url}/v1/deployments/chat:dummy/limits`, bearer(inferenceOnly)), 403, 'FORBIDDEN').details).toEqual({ scope: 'analytics:read' });
    });

    it('a child\'s scopes are a subset of its parent\'s, the parent\'s by default', async () => {
      const parent = await mintToken(gw, { scopes: ['inference'] });
      const wider = await mintRaw(gw.url, { requestAuthAndQuotas: {}, scopes: ['inference', 'analytics:read'] }, bearer(parent));
      expect(expectError(wider, 403, 'FORBIDDEN').details).toEqual({ field: 'scopes.1' });
      const child = await mintToken(gw, {}, bearer(parent));
      expect((await getJson(`${gw.url}/api/v1/oauth/tokeninfo`, bearer(child))).status).toBe(403);
      expect((await useToken(gw.url, child)).status).toBe(200);
    });

    it('operator keys have inference unless configured; a read-only key reads, and cannot call a model', async () => {
      expect(expectError(await getJson(`${gw.url}/v1/deployments/chat:dummy/limits`, bearer(APP_KEY)), 403, 'FORBIDDEN').details).toEqual({ scope: 'analytics:read' });
      expect((await getJson(`${gw.url}/v1/deployments/chat:dummy/limits`, bearer(DASHBOARD_KEY))).status).toBe(200);
      expect(expectError(await useToken(gw.url, DASHBOARD_KEY), 403, 'FORBIDDEN').details).toEqual({ scope: 'inference' });
    });

    it('several named admin keys mint, introspect and revoke by jti beside AISBREAKER_ADMIN_KEY; others get 403 naming admin', async () => {
      for (const key of [OPS_KEY_1, OPS_KEY_2, ADMIN_KEY]) {
        const token = await mintToken(gw, {}, bearer(key));
        expect((await postForm<{ active: boolean }>(`${gw.url}/api/v1/oauth/introspect`, { token }, bearer(key))).json.active).toBe(true);
      }
      for (const credential of [APP_KEY, DASHBOARD_KEY, undefined]) {
        const headers = credential === undefined ? {} : bearer(credential);
        expect(expectError(await mintRaw(gw.url, { requestAuthAndQuotas: {} }, headers), 403, 'FORBIDDEN').details).toEqual({ scope: 'admin' });
        expect(expectError(await postForm(`${gw.url}/api/v1/oauth/introspect`, { token: 'x' }, headers), 403, 'FORBIDDEN').details).toEqual({ scope: 'admin' });
      }
      const victim = await mintToken(gw, {});
      const jti = (await getJson<{ jti: string }>(`${gw.url}/api/v1/oauth/tokeninfo`, bearer(victim))).json.jti;
      expect(expectError(await postForm(`${gw.url}/api/v1/oauth/revoke`, { jti }, bearer(APP_KEY)), 403, 'FORBIDDEN').details).toEqual({ scope: 'admin' });
      expect((await postForm<{ revoked: boolean }>(`${gw.url}/api/v1/oauth/revoke`, { jti }, bearer(OPS_KEY_2))).json.revoked).toBe(true);
      expect((await useToken(gw.url, victim)).status).toBe(401);
    });

    it('only an admin credential mints the admin scope; an admin token then acts as one', async () => {
      const plain = await mintToken(gw, {});
      expect(expectError(await mintRaw(gw.url, { requestAuthAndQuotas: {}, scopes: ['admin'] }, bearer(plain)), 403, 'FORBIDDEN').details).toEqual({ field: 'scopes.0' });
      const adminToken = await mintToken(gw, { name: 'ops-bot', scopes: ['admin', 'analytics:read'] }, bearer(OPS_KEY_1));
      expect((await postForm<{ active: boolean }>(`${gw.url}/api/v1/oauth/introspect`, { token: plain }, bearer(adminToken))).json.active).toBe(true);
      // admin without inference calls no model
      expect(expectError(await useToken(gw.url, adminToken), 403, 'FORBIDDEN').details).toEqual({ scope: 'inference' });
      // a revoked admin token is no admin any more
      expect((await postForm(`${gw.url}/api/v1/oauth/revoke`, { token: adminToken })).status).toBe(200);
      expect((await postForm(`${gw.url}/api/v1/oauth/introspect`, { token: plain }, bearer(adminToken))).status).toBe(403);
    });

    it('METRICS_AUTH=on: /metrics needs analytics:read', async () => {
      expect((await getJson(`${gw.url}/metrics`)).status).toBe(401);
      expect(expectError(await getJson(`${gw.url}/metrics`, bearer(APP_KEY)), 403, 'FORBIDDEN').details).toEqual({ scope: 'analytics:read' });
      const res = await getJson(`${gw.url}/metrics`, bearer(DASHBOARD_KEY));
      expect(res.status).toBe(200);
      expect(res.text).toContain('aisbgw_http_requests_total');
    });
  });

  describe('expiry notice', () => {
    it('a credential within AISBREAKER_EXPIRY_NOTICE (7d) of its expiry is told when it expires, on every response and in tokeninfo', async () => {
      const soon = await mintToken(gw, { expirationTimeSpan: '2d' });
      const later = await mintToken(gw, { expirationTimeSpan: '30d' });
      const served = await useToken(gw.url, soon);
      expect(served.headers.get('aisbreaker-credential-expires-at')).toBe(new Date(NOW + 2 * 86400_000).toISOString());
      expect((await useToken(gw.url, later)).headers.get('aisbreaker-credential-expires-at')).toBeNull();
      const info = await getJson<{ expires_soon: boolean; expires_at: string }>(`${gw.url}/api/v1/oauth/tokeninfo`, bearer(soon));
      expect(info.json).toMatchObject({ expires_soon: true, expires_at: new Date(NOW + 2 * 86400_000).toISOString() });
      expect((await getJson<{ expires_soon: boolean }>(`${gw.url}/api/v1/oauth/tokeninfo`, bearer(later))).json.expires_soon).toBe(false);

      expect((await useToken(gw.url, SOON_KEY)).headers.get('aisbreaker-credential-expires-at')).toBe('2030-01-03T12:00:00.000Z');
      expect((await useToken(gw.url, APP_KEY)).headers.get('aisbreaker-credential-expires-at')).toBeNull();
    });

    it('warns in the log of operator keys about to expire or expired, naming them without the key', () => {
      const warnings = linesOf(gw).filter((l) => l.level === 40 && typeof l.msg === 'string' && l.msg.startsWith('operator key'));
      expect(warnings.map((w) => [(w.key as { name: string }).name, w.expiresAt])).toEqual(
        expect.arrayContaining([
          ['soon', '2030-01-03T12:00:00.000Z'],
          ['old', '2029-12-31T00:00:00.000Z'],
        ]),
      );
      expect(JSON.stringify(warnings)).not.toContain(SOON_KEY);
    });
  });

  describe('audit trail', () => {
    it('one audit line per mint, revocation, introspection and refused admin act, with who and what, never a secret', async () => {
      const before = gw.logs.length;
      const token = await mintToken(gw, {
        name: 'audited',
        scopes: ['inference'],
        requestAuthAndQuotas: { requestQuotas: { perClientRequestLimits: { requestsPerMinute: 10 } }, serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: OPENAI_SECRET }] },
        expirationTimeSpan: '1d',
      }, bearer(OPS_KEY_1));
      const child = await mintToken(gw, { name: 'audited-child' }, bearer(token));
      await postForm(`${gw.url}/api/v1/oauth/introspect`, { token: child }, bearer(ADMIN_KEY));
      await postForm(`${gw.url}/api/v1/oauth/revoke`, { token: child });
      await mintRaw(gw.url, { requestAuthAndQuotas: {} }, bearer('wrong-admin-key-0123456789abcdef'));

      const fresh = linesOf({ ...gw, logs: gw.logs.slice(before) });
      const minted = fresh.filter((l) => l.audit && l.event === 'token.minted');
      expect(minted).toHaveLength(2);
      expect(minted[0]).toMatchObject({ by: { via: 'operator-key', fingerprint: fingerprint(OPS_KEY_1), name: 'ops-1' }, name: 'audited', scopes: ['inference'], limits: 'client 10 requests/minute', services: ['chat:openai.com'], expiresAt: new Date(NOW + 86400_000).toISOString() });
      expect(minted[1]).toMatchObject({ by: { via: 'parent-token', fingerprint: fingerprint(token), name: 'audited' }, parent: minted[0]?.jti, name: 'audited-child', scopes: ['inference'] });
      expect(fresh.find((l) => l.audit && l.event === 'token.introspected')).toMatchObject({ by: { via: 'admin-key', name: 'AISBREAKER_ADMIN_KEY' }, jti: minted[1]?.jti, active: true });
      expect(fresh.find((l) => l.audit && l.event === 'token.revoked')).toMatchObject({ by: { via: 'holder', fingerprint: fingerprint(child) }, jti: minted[1]?.jti, name: 'audited-child' });
      expect(fresh.find((l) => l.audit && l.event === 'admin.refused')).toMatchObject({ action: 'minting', credential: fingerprint('wrong-admin-key-0123456789abcdef'), address: '127.0.0.1' });

      const text = JSON.stringify(fresh.filter((l) => l.audit));
      for (const secret of [OPENAI_SECRET, OPS_KEY_1, ADMIN_KEY, token, child, 'wrong-admin-key-0123456789abcdef']) expect(text).not.toContain(secret);
    });

    it('a config reload that changes keys is one audit line naming them by id and name', async () => {
      const next = { ...KEYS, [APP_KEY]: { ...KEYS[APP_KEY], scopes: ['inference', 'analytics:read'] } } as Record<string, unknown>;
      delete next[OPS_KEY_2];
      writeFileSync(path + '.tmp', configWith(next));
      renameSync(path + '.tmp', path);
      const deadline = Date.now() + 5000;
      while (auditLines(gw, 'config.keys_changed').length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const [line] = auditLines(gw, 'config.keys_changed');
      expect(line).toMatchObject({ added: [], removed: [{ name: 'ops-2', project: 'Ops' }], changed: [{ name: 'backend', project: 'App' }] });
      expect(JSON.stringify(line)).not.toContain(OPS_KEY_2);
      expect((await getJson(`${gw.url}/v1/deployments/chat:dummy/limits`, bearer(APP_KEY))).status).toBe(200);
    });
  });
});

describe('a server whose only admin credentials are operator keys', () => {
  let dir: string;
  let gw: TestGateway;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'aisbgw-conventions-'));
    writeFileSync(join(dir, 'config.json'), configWith({ [OPS_KEY_1]: KEYS[OPS_KEY_1], [APP_KEY]: KEYS[APP_KEY] }));
    gw = await startGateway({ AISBREAKER_CONFIG: join(dir, 'config.json') });
  });
  afterAll(async () => {
    await gw.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('closes minting and introspection to everyone else, as AISBREAKER_ADMIN_KEY would', async () => {
    expect(expectError(await mintRaw(gw.url, { requestAuthAndQuotas: {} }), 403, 'FORBIDDEN').details).toEqual({ scope: 'admin' });
    const token = await mintToken(gw, {}, bearer(OPS_KEY_1));
    expect((await postForm(`${gw.url}/api/v1/oauth/introspect`, { token })).status).toBe(403);
    expect((await postForm(`${gw.url}/api/v1/oauth/introspect`, { token }, bearer(OPS_KEY_1))).status).toBe(200);
  });
});

describe('a server without admin credentials', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ AISBREAKER_EXPIRY_NOTICE: '1d' });
  });
  afterAll(() => gw.close());

  it('mints for anyone (as an AIsBreaker server does), but never the admin scope; the notice follows AISBREAKER_EXPIRY_NOTICE', async () => {
    const token = await mintToken(gw, { expirationTimeSpan: '2d' }, {});
    expect((await useToken(gw.url, token)).headers.get('aisbreaker-credential-expires-at')).toBeNull();
    expect(expectError(await mintRaw(gw.url, { requestAuthAndQuotas: {}, scopes: ['admin'] }), 403, 'FORBIDDEN').details).toEqual({ scope: 'admin' });
    expect(auditLines(gw, 'token.minted')[0]).toMatchObject({ by: { via: 'open', address: '127.0.0.1' } });
  });

  it('refuses a bad AISBREAKER_EXPIRY_NOTICE or METRICS_AUTH at start', async () => {
    await expect(startGateway({ AISBREAKER_EXPIRY_NOTICE: 'soon' })).rejects.toThrow(/AISBREAKER_EXPIRY_NOTICE: "soon" is not a time span/);
    await expect(startGateway({ METRICS_AUTH: 'yes' })).rejects.toThrow(/METRICS_AUTH: must be "on" or "off"/);
  });
});
