import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SOAK_SECRET, runSoak } from '../../scripts/soak.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { claimsFor, findLeaks, flipSegmentBit, handMadeToken, legacyToken, rawHttp, requestText, whereLeaks } from '../helpers/hostile.js';
import { MockOpenAi } from '../helpers/mock-openai.js';

/**
 * Secrets: one broad run with real-looking secrets everywhere (server secret, previous secret,
 * legacy keyphrase, admin key, OPENAI_API_KEY, operator keys, third-party secrets in tokens, the
 * tokens themselves), through normal use, the hostile catalogues' kinds of input, generated mint
 * bodies, upstream failures and a short soak. Every log line and every response (status line,
 * headers, body) is kept, then searched for every secret and every token: none may appear,
 * except a token in the very response that issued it.
 */

const rand = (prefix: string): string => prefix + randomBytes(18).toString('base64url');

const SECRETS = {
  serverSecret: rand('server-secret-'),
  previousSecret: rand('previous-secret-'),
  legacyKeyphrase: rand('legacy-phrase-'),
  adminKey: rand('admin-key-'),
  openaiApiKey: rand('sk-server-openai-'),
  operatorKey: rand('aisbk_operator-'),
  hashedOperatorKey: rand('aisbk_hashed-'),
  tokenServiceSecret: rand('sk-token-openai-'),
  catchAllSecret: rand('sk-catch-all-'),
  childSecret: rand('sk-child-'),
  soakServiceSecret: rand('sk-soak-'),
  soakServerSecret: SOAK_SECRET,
};

describe('secrets: no log line and no response of a broad run holds a secret or a token', () => {
  let dir: string;
  let mock: MockOpenAi;
  let gw: TestGateway;
  /** every response as received: status line, headers and body */
  const responses: string[] = [];
  /** responses that legitimately carry the token they issued, by that token */
  const issued = new Map<string, string>();
  const tokens: string[] = [];
  /** secrets generated during the run (random mint bodies) */
  const generated: string[] = [];
  const soakLogs: string[] = [];

  async function send(method: string, path: string, headers: string[], body = ''): Promise<{ status: number; body: string }> {
    const res = await rawHttp(gw.port, requestText(method, path, body ? ['Content-Type: application/json', ...headers] : headers, body));
    responses.push(res.raw);
    return res;
  }

  async function mintToken(body: object, headers: string[] = [`Authorization: Bearer ${SECRETS.adminKey}`]): Promise<string> {
    const res = await rawHttp(gw.port, requestText('POST', '/api/v1/oauth/token', ['Content-Type: application/json', ...headers], JSON.stringify(body)));
    expect(res.status).toBe(200);
    const token = (JSON.parse(res.body) as { access_token: string }).access_token;
    tokens.push(token);
    issued.set(token, res.raw);
    return token;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'aisbgw-secrets-'));
    mock = await MockOpenAi.start();
    const config = join(dir, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({
        keys: {
          [SECRETS.operatorKey]: { project: 'P1', role: 'user', scopes: ['inference', 'analytics:read'] },
          [`sha256:${createHash('sha256').update(SECRETS.hashedOperatorKey).digest('hex')}`]: { project: 'P2', role: 'user' },
        },
        roles: { user: { limits: { 'gpt-4o-mini': {}, 'chat:dummy': { requestMinute: 1000 } } } },
      }),
    );
    gw = await startGateway({
      AISBREAKER_SECRET: SECRETS.serverSecret,
      AISBREAKER_PREVIOUS_SECRETS: SECRETS.previousSecret,
      AISBREAKER_LEGACY_KEYPHRASES: SECRETS.legacyKeyphrase,
      AISBREAKER_ADMIN_KEY: SECRETS.adminKey,
      OPENAI_API_KEY: SECRETS.openaiApiKey,
      OPENAI_BASE_URL: mock.baseUrl,
      AISBREAKER_CONFIG: config,
      LOG_LEVEL: 'trace',
    });
  });
  afterAll(async () => {
    await gw?.close();
    await mock?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('normal use: mint (header and clientSecret), use, stream, derive, tokeninfo, introspect, revoke, operator keys, metrics', async () => {
    const token = await mintToken({
      requestAuthAndQuotas: {
        requestQuotas: { perClientRequestLimits: { requestsPerMinute: 100 } },
        serviceSecrets: [
          { serviceId: 'chat:openai.com', authSecret: SECRETS.tokenServiceSecret },
          { serviceId: '', authSecret: SECRETS.catchAllSecret },
        ],
      },
    });
    await mintToken({ requestAuthAndQuotas: {}, clientSecret: SECRETS.adminKey }, []);
    const auth = [`Authorization: Bearer ${token}`];
    const chat = (stream: boolean, model = 'gpt-4o-mini'): string => JSON.stringify({ model, messages: [{ role: 'user', content: 'hello' }], stream });

    expect((await send('POST', '/api/v1/process', auth, JSON.stringify({ service: { serviceId: 'chat:dummy' }, request: { inputs: [{ text: { role: 'user', content: 'hi' } }] } }))).status).toBe(200);
    expect((await send('POST', '/api/v1/process', auth, JSON.stringify({ service: { serviceId: 'chat:openai.com/gpt-4o-mini' }, request: { inputs: [{ text: { role: 'user', content: 'hi' } }], stream: true } }))).status).toBe(200);
    expect((await send('POST', '/v1/chat/completions', auth, chat(false))).status).toBe(200);
    expect((await send('POST', '/v1/chat/completions', auth, chat(true))).status).toBe(200);
    expect((await send('GET', '/v1/models', auth)).status).toBe(200);
    // the upstream got the token's secret, never the server's own key
    expect(mock.received.map((r) => r.headers.authorization)).toContain(`Bearer ${SECRETS.tokenServiceSecret}`);
    expect(mock.received.map((r) => r.headers.authorization)).not.toContain(`Bearer ${SECRETS.openaiApiKey}`);

    // upstream failures on the way back
    mock.next({ kind: 'fail', status: 401, body: { error: { message: 'Incorrect API key provided: sk-tok***', type: 'invalid_request_error', code: 'invalid_api_key' } } });
    expect((await send('POST', '/v1/chat/completions', auth, chat(false))).status).toBe(401);
    mock.next({ kind: 'fail', status: 500, body: { error: { message: 'boom' } } }, { kind: 'drop-mid-stream' }, { kind: 'drop' });
    expect((await send('POST', '/v1/chat/completions', auth, chat(false))).status).toBe(502);
    expect((await send('POST', '/v1/chat/completions', auth, chat(true))).status).toBe(200);
    expect([502, 503]).toContain((await send('POST', '/v1/chat/completions', auth, chat(false))).status);

    // a child for an end user: its secret copied from the parent, never shown
    const childRes = await send('POST', '/api/v1/oauth/token', auth, JSON.stringify({ requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:openai.com' }] }, expirationTimeSpan: '1h' }));
    expect(childRes.status).toBe(200);
    const child = (JSON.parse(childRes.body) as { access_token: string }).access_token;
    tokens.push(child);
    issued.set(child, responses.at(-1) ?? '');
    const grandChild = await mintToken({ requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:openai.com' }] }, expirationTimeSpan: '30m' }, auth);
    const another = await mintToken({ requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: SECRETS.childSecret }] } });
    expect((await send('POST', '/v1/chat/completions', [`Authorization: Bearer ${another}`], chat(true))).status).toBe(200);
    expect(mock.received.at(-1)?.headers.authorization).toBe(`Bearer ${SECRETS.childSecret}`);
    expect((await send('GET', '/api/v1/oauth/tokeninfo', [`Authorization: Bearer ${grandChild}`])).status).toBe(200);
    expect((await send('GET', '/api/v1/oauth/tokeninfo', auth)).status).toBe(200);
    expect((await send('POST', '/api/v1/oauth/introspect', [`Authorization: Bearer ${SECRETS.adminKey}`], JSON.stringify({ token }))).status).toBe(200);
    expect((await send('POST', '/api/v1/oauth/revoke', [], JSON.stringify({ token: child }))).status).toBe(200);
    expect((await send('GET', '/api/v1/oauth/tokeninfo', [`Authorization: Bearer ${child}`])).status).toBe(401);

    // operator keys, by Bearer and by Api-Key: the server's own OpenAI key goes upstream, and no further
    expect((await send('POST', '/v1/chat/completions', [`Authorization: Bearer ${SECRETS.operatorKey}`], chat(false))).status).toBe(200);
    expect((await send('POST', '/v1/chat/completions', [`Api-Key: ${SECRETS.hashedOperatorKey}`], chat(true))).status).toBe(200);
    expect(mock.received.at(-1)?.headers.authorization).toBe(`Bearer ${SECRETS.openaiApiKey}`);
    expect((await send('GET', '/v1/deployments/gpt-4o-mini/limits', [`Authorization: Bearer ${SECRETS.operatorKey}`])).status).toBe(200);
    expect((await send('GET', '/metrics', [])).status).toBe(200);
  });

  it('an upstream error that quotes the server key back is not passed on to the operator key holder', async () => {
    mock.next({ kind: 'fail', status: 401, body: { error: { message: `Incorrect API key provided: ${SECRETS.openaiApiKey}`, type: 'invalid_request_error', code: 'invalid_api_key' } } });
    const res = await send('POST', '/v1/chat/completions', [`Authorization: Bearer ${SECRETS.operatorKey}`], JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }));
    expect(res.status).toBe(401);
    expect(res.body).not.toContain(SECRETS.openaiApiKey);
  });

  it('hostile input carrying secrets: bad tokens, bad bodies around secrets, ambiguous and misplaced credentials', async () => {
    const good = tokens[0] ?? '';
    const legacy = await legacyToken(SECRETS.legacyKeyphrase, claimsFor({ serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: SECRETS.tokenServiceSecret }] }));
    const previous = handMadeToken(SECRETS.previousSecret, claimsFor({ serviceSecrets: [{ serviceId: '', authSecret: SECRETS.catchAllSecret }] }));
    const expired = handMadeToken(SECRETS.serverSecret, claimsFor({ iatSeconds: Math.floor(Date.now() / 1000) - 7200, lifetimeSeconds: 60, serviceSecrets: [{ serviceId: '', authSecret: SECRETS.catchAllSecret }] }));
    const otherHost = handMadeToken(SECRETS.serverSecret, claimsFor({ host: 'evil.example', serviceSecrets: [{ serviceId: '', authSecret: SECRETS.catchAllSecret }] }));
    tokens.push(legacy, previous, expired, otherHost);
    const bad = [...[0, 1, 2, 3, 4].map((i) => flipSegmentBit(good, i, 5)), good.slice(0, -3), good + 'x', expired, otherHost];
    tokens.push(...bad.filter((t) => t.length > 60));
    const body = JSON.stringify({ service: { serviceId: 'chat:dummy' }, request: { inputs: [] } });
    for (const t of [...bad, legacy, previous]) {
      await send('POST', '/api/v1/process', [`Authorization: Bearer ${t}`], body);
      await send('GET', '/api/v1/oauth/tokeninfo', [`Api-Key: ${t}`]);
      await send('POST', '/api/v1/oauth/revoke', [], JSON.stringify({ token: t }));
      await send('POST', '/api/v1/oauth/introspect', [`Authorization: Bearer ${SECRETS.adminKey}`], JSON.stringify({ token: t }));
    }
    // ambiguous and misplaced credentials
    await send('POST', '/api/v1/process', [`Authorization: Bearer ${good}`, `Api-Key: ${SECRETS.operatorKey}`], body);
    await send('POST', '/api/v1/process', [`Authorization: Bearer ${good}`, `Authorization: Bearer ${SECRETS.operatorKey}`], body);
    await send('POST', `/api/v1/process?access_token=${good}&api_key=${SECRETS.operatorKey}`, [], body);
    await send('POST', '/api/v1/process', [`Authorization: Basic ${Buffer.from(`user:${SECRETS.adminKey}`).toString('base64')}`], body);
    await send('POST', '/api/v1/oauth/token', [`Authorization: Bearer ${SECRETS.adminKey}x`], JSON.stringify({ requestAuthAndQuotas: {} }));
    await send('POST', '/api/v1/oauth/token', [], JSON.stringify({ requestAuthAndQuotas: {}, clientSecret: SECRETS.adminKey.slice(0, -1) }));
    // bodies refused around a secret: the refusal names the field, never the value
    for (const mintBody of [
      { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 7, authSecret: SECRETS.tokenServiceSecret }] } },
      { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'x', authSecret: SECRETS.tokenServiceSecret, extra: SECRETS.catchAllSecret }] } },
      { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'x', authSecret: SECRETS.tokenServiceSecret.repeat(80) }] } },
      { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'x', authSecret: SECRETS.tokenServiceSecret }], requestQuotas: { globalRequestLimits: { requestsPerMinute: SECRETS.catchAllSecret } } } },
      { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'x', authSecret: SECRETS.tokenServiceSecret }] }, expirationTimeSpan: SECRETS.catchAllSecret.slice(0, 30) },
      { requestAuthAndQuotas: { serviceSecrets: Array.from({ length: 16 }, () => ({ serviceId: 'x', authSecret: SECRETS.tokenServiceSecret.repeat(40) })) } },
    ]) {
      expect((await send('POST', '/api/v1/oauth/token', [`Authorization: Bearer ${SECRETS.adminKey}`], JSON.stringify(mintBody))).status).toBe(400);
    }
    await send('POST', '/api/v1/oauth/token', [`Authorization: Bearer ${SECRETS.adminKey}`], `{"requestAuthAndQuotas":{"serviceSecrets":[{"serviceId":"x","authSecret":"${SECRETS.tokenServiceSecret}"`);
    await send('POST', '/api/v1/process', [`Authorization: Bearer ${good}`], JSON.stringify({ service: { serviceId: 'chat:dummy', url: `https://${SECRETS.catchAllSecret}@evil.example` }, request: { inputs: [] } }));
    await send('POST', '/api/v1/oauth/revoke', [`Authorization: Bearer ${SECRETS.adminKey}`], JSON.stringify({ jti: SECRETS.catchAllSecret + '!' }));
  });

  it('a token or key in the URL path is not echoed in the 404 nor logged', async () => {
    const good = tokens[0] ?? '';
    const before = gw.logs.length;
    const paths = [`/api/v1/oauth/tokeninfo/${good}`, `/v1/${good}/chat/completions`, `/${SECRETS.operatorKey}`];
    const found: string[] = [];
    for (const path of paths) {
      const res = await send('GET', path, []);
      expect(res.status).toBe(404);
      found.push(...findLeaks([res.body, ...gw.logs.slice(before)], { token: good.slice(-40), operatorKey: SECRETS.operatorKey }).map((l) => `${path.slice(0, 30)}: ${l}`));
    }
    expect(found).toEqual([]);
  });

  it('generated mint bodies with random secrets (60 runs): none of their secrets comes back', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ serviceId: fc.constantFrom('chat:openai.com', 'chat:dummy', ''), n: fc.nat() }), { minLength: 1, maxLength: 3 }), fc.boolean(), async (entries, derive) => {
        const serviceSecrets = entries.map((e) => ({ serviceId: e.serviceId, authSecret: rand(`sk-gen${e.n}-`) }));
        generated.push(...serviceSecrets.map((s) => s.authSecret));
        const token = await mintToken({ requestAuthAndQuotas: { serviceSecrets } });
        const auth = [`Authorization: Bearer ${token}`];
        await send('GET', '/api/v1/oauth/tokeninfo', auth);
        await send('POST', '/v1/chat/completions', auth, JSON.stringify({ model: 'chat:dummy/x', messages: [{ role: 'user', content: 'x' }] }));
        if (derive) await send('POST', '/api/v1/oauth/token', auth, JSON.stringify({ requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'nope' }] } }));
      }),
      { numRuns: 60 },
    );
  });

  it('a short soak with the secrets in play: its logs and responses too', async () => {
    const soakResponses: string[] = [];
    const report = await runSoak({
      durationMs: 2500,
      maxRequests: 600,
      concurrency: 4,
      serviceSecret: SECRETS.soakServiceSecret,
      env: { AISBREAKER_ADMIN_KEY: SECRETS.adminKey, OPENAI_API_KEY: SECRETS.openaiApiKey, AISBREAKER_PREVIOUS_SECRETS: SECRETS.previousSecret },
      onLog: (line) => soakLogs.push(line),
      onResponse: (kind, status, body) => {
        // a mint's answer is the token it issued: keep it out, like the issuing responses above
        if (!(kind === 'mint' && status === 200)) soakResponses.push(body);
        else tokens.push((JSON.parse(body) as { access_token: string }).access_token);
      },
    });
    expect(report.errors).toBe(0);
    responses.push(...soakResponses);
  });

  it('finally: every log line and response searched for every secret and token; none found', () => {
    expect(gw.logs.length).toBeGreaterThan(100);
    expect(soakLogs.length).toBeGreaterThan(100);
    expect(responses.length).toBeGreaterThan(200);
    const needles: Record<string, string> = { ...SECRETS };
    generated.forEach((s, i) => (needles[`generated secret ${i}`] = s));
    tokens.forEach((t, i) => {
      needles[`token ${i}`] = t;
      // the protected header is the same for every token of a key: search for the encrypted part
      needles[`token ${i} (tail)`] = t.slice(-40);
    });
    const searched = responses.filter((r) => ![...issued.values()].includes(r));
    const leaks = whereLeaks([...gw.logs, ...soakLogs, ...searched], needles);
    expect(leaks).toEqual([]);
    // the issuing responses hold their own token and nothing else secret
    for (const [token, raw] of issued) {
      // (a truncated copy of this token, from the hostile part, is part of it: not another secret)
      const others = Object.fromEntries(Object.entries(needles).filter(([, v]) => !token.includes(v)));
      expect(findLeaks([raw], others)).toEqual([]);
    }
  });
});
