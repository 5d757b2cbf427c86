import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EncryptJWT, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH } from '../../src/json-depth.js';
import { mint, postProcess, processBody, startGateway, type TestGateway } from '../helpers/gateway.js';
import { expectError, expectServes, getJson, mintRaw, postForm, postJson, postRaw, useToken } from '../helpers/lifecycle-helpers.js';
import { MockOpenAi } from '../helpers/mock-openai.js';
import { startRecorder, type Recorder } from '../helpers/recorder.js';

/**
 * The findings of a security review that attacked running gateways, one describe each: every test
 * here failed on the code the review attacked.
 */

const OPERATOR_KEY = 'operator-key-review-0123456789abcdef';
const OPENAI_OPERATOR_SECRET = 'sk-operator-openai-0123456789abcdef';
const AZURE_OPERATOR_SECRET = 'azure-operator-key-0123456789abcdef';

function tempConfig(content: unknown): { path: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'aisbgw-review-'));
  const path = join(dir, 'config.json');
  writeFileSync(path, JSON.stringify(content));
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

function chat(gw: TestGateway, credential: string, model: string, extra: Record<string, unknown> = {}): Promise<Response> {
  return fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${credential}` },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], ...extra }),
  });
}

async function statusAndCode(res: Response): Promise<[number, string | undefined]> {
  const body = (await res.json()) as { error?: { code?: string } };
  return [res.status, body.error?.code];
}

/** A gateway in front of an OpenAI mock, started before the describe's tests and closed after them. */
function gatewayBeforeOpenAiMock(env: Record<string, string> = {}): { openai: MockOpenAi; gw: TestGateway } {
  const ctx = {} as { openai: MockOpenAi; gw: TestGateway };
  beforeAll(async () => {
    ctx.openai = await MockOpenAi.start();
    ctx.gw = await startGateway({ OPENAI_BASE_URL: ctx.openai.baseUrl, ...env });
  });
  afterAll(async () => {
    await ctx.gw.close();
    await ctx.openai.close();
  });
  return ctx;
}

describe('1. an operator key grants exactly the models its role names', () => {
  let openai: MockOpenAi;
  let azure: MockOpenAi;
  let config: ReturnType<typeof tempConfig>;
  let gw: TestGateway;

  beforeAll(async () => {
    openai = await MockOpenAi.start();
    azure = await MockOpenAi.start();
    process.env.REVIEW_AZURE_KEY = AZURE_OPERATOR_SECRET;
    config = tempConfig({
      services: { 'chat:azure': { kind: 'openai', baseUrl: azure.baseUrl, auth: 'api-key', operatorKeyEnv: 'REVIEW_AZURE_KEY' } },
      keys: { [OPERATOR_KEY]: { project: 'Review', role: 'narrow', scopes: ['inference', 'analytics:read'] } },
      roles: { narrow: { limits: { 'gpt-4o-mini': { requestMinute: 3 }, 'chat:dummy': {} } } },
    });
    gw = await startGateway({ AISBREAKER_CONFIG: config.path, OPENAI_BASE_URL: openai.baseUrl, OPENAI_API_KEY: OPENAI_OPERATOR_SECRET });
  });
  afterAll(async () => {
    await gw.close();
    await Promise.all([openai.close(), azure.close()]);
    config.remove();
    delete process.env.REVIEW_AZURE_KEY;
  });

  it('refuses a listed name in the last path segment of another service: nothing reaches an upstream', async () => {
    for (const model of ['chat:azure/chat:dummy', 'chat:openai.com/chat:dummy', 'chat:azure/gpt-4o-mini', 'chat:azure/v1/gpt-4o-mini']) {
      const res = await chat(gw, OPERATOR_KEY, model);
      expect([model, ...(await statusAndCode(res))]).toEqual([model, 403, 'FORBIDDEN']);
    }
    expect(azure.received).toHaveLength(0);
    expect(openai.received).toHaveLength(0);
  });

  it('counts the entry it grants: the bare model is the default service\'s, with its limit, in both spellings', async () => {
    const results: number[] = [];
    for (const model of ['gpt-4o-mini', 'chat:openai.com/gpt-4o-mini', 'gpt-4o-mini', 'chat:openai.com/gpt-4o-mini']) {
      const res = await chat(gw, OPERATOR_KEY, model);
      await res.arrayBuffer();
      results.push(res.status);
    }
    expect(results).toEqual([200, 200, 200, 429]);
    expect(openai.received).toHaveLength(3);
    expect(openai.received.every((r) => r.headers.authorization === `Bearer ${OPENAI_OPERATOR_SECRET}`)).toBe(true);
    expect(azure.received).toHaveLength(0);
    // a service id grants that service, whatever it is asked to use
    expect((await chat(gw, OPERATOR_KEY, 'chat:dummy/anything')).status).toBe(200);
  });

  it('applies the same rule to /v1/deployments/{model}/limits', async () => {
    const limits = (model: string): Promise<{ status: number }> => getJson(`${gw.url}/v1/deployments/${encodeURIComponent(model)}/limits`, { Authorization: `Bearer ${OPERATOR_KEY}` });
    expect((await limits('chat:azure/chat:dummy')).status).toBe(403);
    expect((await limits('chat:azure/gpt-4o-mini')).status).toBe(403);
    const granted = await getJson<{ minuteRequestStats: { total: number } }>(`${gw.url}/v1/deployments/gpt-4o-mini/limits`, { Authorization: `Bearer ${OPERATOR_KEY}` });
    expect(granted.status).toBe(200);
    expect(granted.json.minuteRequestStats.total).toBe(3);
  });
});

describe('2. a token\'s secret goes only to its service and the services below it at a "/"', () => {
  const VICTIM_SECRET = 'sk-victim-openai-key-0123456789abcdef';
  let openai: MockOpenAi;
  let lookalike: MockOpenAi;
  let config: ReturnType<typeof tempConfig>;
  let gw: TestGateway;

  beforeAll(async () => {
    openai = await MockOpenAi.start();
    lookalike = await MockOpenAi.start();
    config = tempConfig({ services: { 'chat:openai.com-eu': { kind: 'openai', baseUrl: lookalike.baseUrl } } });
    gw = await startGateway({ AISBREAKER_CONFIG: config.path, OPENAI_BASE_URL: openai.baseUrl });
  });
  afterAll(async () => {
    await gw.close();
    await Promise.all([openai.close(), lookalike.close()]);
    config.remove();
  });

  it('a service whose id merely starts with the secret\'s serviceId gets no secret, and no child can be derived for it', async () => {
    const token = await mint(gw.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: VICTIM_SECRET }] } });
    const refused = await chat(gw, token, 'chat:openai.com-eu/gpt-4o');
    expect(await statusAndCode(refused)).toEqual([401, 'MISSING_API_KEY']);
    expect(lookalike.received).toHaveLength(0);

    const child = await mintRaw(gw.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:openai.com-eu' }] } }, { Authorization: `Bearer ${token}` });
    expect(expectError(child, 403, 'FORBIDDEN').details?.field).toBe('requestAuthAndQuotas.serviceSecrets.0.serviceId');

    // its own service, and its models below it at "/", still get it
    expect((await chat(gw, token, 'chat:openai.com/gpt-4o')).status).toBe(200);
    expect(openai.received.at(-1)?.headers.authorization).toBe(`Bearer ${VICTIM_SECRET}`);
    const modelChild = await mintRaw(gw.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:openai.com/gpt-4o' }] } }, { Authorization: `Bearer ${token}` });
    expect(modelChild.status).toBe(200);
    expect((await chat(gw, modelChild.json.access_token, 'chat:openai.com/gpt-4o')).status).toBe(200);
    expect(await statusAndCode(await chat(gw, modelChild.json.access_token, 'chat:openai.com/gpt-4o-mini'))).toEqual([401, 'MISSING_API_KEY']);
    expect(lookalike.received).toHaveLength(0);
  });
});

describe('3. a legacy token\'s ids are its own, never taken from its payload', () => {
  const KEYPHRASE = 'review-legacy-keyphrase-0123456789';
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ AISBREAKER_LEGACY_KEYPHRASES: KEYPHRASE });
  });
  afterAll(() => gw.close());

  async function legacyToken(payload: Record<string, unknown>): Promise<string> {
    const key = createHash('sha256').update(KEYPHRASE).digest();
    const now = Math.floor(Date.now() / 1000);
    const jwe = await new EncryptJWT(payload as JWTPayload)
      .setProtectedHeader({ ver: 'aisbreaker.org/jwt/v1', typ: 'JOSE', alg: 'dir', enc: 'A128CBC-HS256' })
      .setSubject('127.0.0.1#aisbreaker')
      .setIssuedAt(now)
      .setExpirationTime(now + 3600)
      .encrypt(new Uint8Array(key));
    return 'aisbreaker_' + jwe;
  }

  it('revoking a legacy token that names a victim\'s jti (learnt from a child\'s tokeninfo) revokes neither the victim nor its family', async () => {
    const victim = await mint(gw.url);
    const child = (await mintRaw(gw.url, { requestAuthAndQuotas: {} }, { Authorization: `Bearer ${victim}` })).json.access_token;
    const info = await getJson<{ parent: string }>(`${gw.url}/api/v1/oauth/tokeninfo`, { Authorization: `Bearer ${child}` });
    const victimJti = info.json.parent;
    expect(victimJti).toMatch(/^[A-Za-z0-9_-]{22}$/);

    const forged = await legacyToken({ requestQuotas: {}, serviceSecrets: [], jti: victimJti, ancestors: [{ jti: victimJti }] });
    const forgedInfo = await getJson<{ jti: string }>(`${gw.url}/api/v1/oauth/tokeninfo`, { Authorization: `Bearer ${forged}` });
    expect(forgedInfo.status).toBe(200);
    expect(forgedInfo.json.jti).toMatch(/^legacy-[A-Za-z0-9_-]{22}$/);
    const revoked = await postForm<{ jti: string }>(`${gw.url}/api/v1/oauth/revoke`, { token: forged });
    expect(revoked.status).toBe(200);
    expect(revoked.json.jti).toBe(forgedInfo.json.jti);

    expect((await useToken(gw.url, forged)).status).toBe(401);
    await expectServes(gw.url, victim);
    await expectServes(gw.url, child);
  });
});

describe('4. distinct IPv6 /64 networks are distinct clients, whatever the notation', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ TRUST_PROXY: 'loopback' });
  });
  afterAll(() => gw.close());

  it('2001::5:1:2:3:4 and 2001::6:1:2:3:4 are two clients; 2001:0:0:5::9 is the first again', async () => {
    const token = await mint(gw.url, { requestAuthAndQuotas: { requestQuotas: { perClientRequestLimits: { requestsPerMinute: 1 } } } });
    const from = async (address: string): Promise<number> => {
      const res = await postProcess(gw.url, token, processBody('chat:dummy', 'hi'), { 'X-Forwarded-For': address });
      await res.arrayBuffer();
      return res.status;
    };
    expect([await from('2001::5:1:2:3:4'), await from('2001::6:1:2:3:4'), await from('2001:0:0:5::9')]).toEqual([200, 200, 429]);
  });
});

describe('5. a deeply nested JSON body is a 400 naming the limit, on every JSON route, never a 500', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(() => gw.close());

  const nested = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth);

  it('refuses it before parsing, streaming or not, and serves the next request', async () => {
    const token = await mint(gw.url);
    const auth = { Authorization: `Bearer ${token}` };
    const deep = nested(20_000);
    const bodies: [string, string, Record<string, string>][] = [
      [`${gw.url}/v1/chat/completions`, `{"model":"chat:dummy","stream":true,"messages":[{"role":"user","content":"x"}],"x":${deep}}`, auth],
      [`${gw.url}/v1/chat/completions`, `{"model":"chat:dummy","messages":[{"role":"user","content":${deep}}]}`, auth],
      [`${gw.url}/api/v1/process`, `{"service":{"serviceId":"chat:dummy"},"request":{"inputs":[{"text":{"role":"user","content":"x"}}],"stream":true},"x":${deep}}`, auth],
      [`${gw.url}/api/v1/oauth/token`, `{"requestAuthAndQuotas":{"x":${deep}}}`, {}],
      [`${gw.url}/api/v1/oauth/revoke`, `{"token":${nested(5000)}}`, {}],
    ];
    for (const [url, body, headers] of bodies) {
      const res = await postRaw(url, body, 'application/json', headers);
      const error = expectError(res, 400, 'INVALID_REQUEST');
      expect(error.message).toContain(String(MAX_JSON_DEPTH));
      expect(error.details).toMatchObject({ field: '(body)', maxDepth: MAX_JSON_DEPTH });
    }
    // brackets inside strings are text, and the limit itself is allowed
    const atLimit = `{"model":"chat:dummy","messages":[{"role":"user","content":"${'['.repeat(500)}"}],"x":${nested(MAX_JSON_DEPTH - 1)}}`;
    expect((await postRaw(`${gw.url}/v1/chat/completions`, atLimit, 'application/json', auth)).status).toBe(200);
    expect(gw.logs.filter((line) => (JSON.parse(line) as { level: number }).level >= 50)).toEqual([]);
    await expectServes(gw.url, token);
  });
});

describe('7. past the refused-credential limit a valid token is still served; guessable credentials are not tried', () => {
  let config: ReturnType<typeof tempConfig>;
  let gw: TestGateway;
  beforeAll(async () => {
    config = tempConfig({ keys: { [OPERATOR_KEY]: { project: 'Review', role: 'any' } }, roles: { any: { limits: { 'chat:dummy': {} } } } });
    gw = await startGateway({ AISBREAKER_CONFIG: config.path, API_AUTH_FAILURE_LIMITS: '5/minute', AISBREAKER_ADMIN_KEY: 'review-admin-key-0123456789abcdef' });
  });
  afterAll(async () => {
    await gw.close();
    config.remove();
  });

  it('a guesser behind the same address does not lock out token holders', async () => {
    const token = await mint(gw.url, { requestAuthAndQuotas: {} }, { Authorization: 'Bearer review-admin-key-0123456789abcdef' });
    const refused: number[] = [];
    for (let i = 0; i < 7; i++) refused.push((await useToken(gw.url, `aisbreaker_guess${i}`)).status);
    expect(refused).toEqual([401, 401, 401, 401, 401, 429, 429]);

    // the valid token: served, again and again
    for (let i = 0; i < 3; i++) await expectServes(gw.url, token);
    // guessable or refused credentials: 429 without being tried, even the right operator key
    expect((await useToken(gw.url, OPERATOR_KEY)).status).toBe(429);
    expect((await useToken(gw.url, 'aisbreaker_another-guess')).status).toBe(429);
    expect((await useToken(gw.url, undefined)).status).toBe(429);
    const introspect = await postForm(`${gw.url}/api/v1/oauth/introspect`, { token }, { Authorization: 'Bearer review-admin-key-0123456789abcdef' });
    expect(introspect.status).toBe(429);
    await expectServes(gw.url, token);
  });
});

describe('8. an upstream error quoting any part of the secret loses that part', () => {
  const SECRET = 'sk-proj-oj-VICTIM3+SECRET/9f8e7d6c5b4a';
  const ctx = gatewayBeforeOpenAiMock();

  it('removes every run of 8 or more characters of the secret, keeping ordinary words', async () => {
    const token = await mint(ctx.gw.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: SECRET }] } });
    const quoted = `Incorrect API key provided: mid=${SECRET.slice(8, 26)} tail=${SECRET.slice(-9)} for organization staging`;
    ctx.openai.next({ kind: 'fail', status: 401, body: { error: { message: quoted, type: 'invalid_request_error', code: 'invalid_api_key' } } });
    const res = await postJson(`${ctx.gw.url}/v1/chat/completions`, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }, { Authorization: `Bearer ${token}` });
    const error = expectError(res, 401, 'UPSTREAM_ERROR');
    expect(error.message).toBe('Incorrect API key provided: mid=[redacted] tail=[redacted] for organization staging');
    for (let i = 0; i + 8 <= SECRET.length; i++) expect(res.text).not.toContain(SECRET.slice(i, i + 8));
  });
});

describe('second review: what an independent attack on the fixed gateway found', () => {
  const ADMIN = 'second-review-admin-key-0123456789';
  const ctx = gatewayBeforeOpenAiMock({ AISBREAKER_ADMIN_KEY: ADMIN, API_AUTH_FAILURE_LIMITS: '5/minute' });
  const mintHere = (body: Record<string, unknown> = {}): Promise<string> => mint(ctx.gw.url, { requestAuthAndQuotas: {}, ...body } as never, { Authorization: `Bearer ${ADMIN}` });

  it('a key that reads as a decided one to a case-insensitive decoder ("Model", "ſtream") is refused, and reaches no upstream', async () => {
    const token = await mintHere({ requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: 'sk-second-review-0123456789abcdef' }] } });
    const received = ctx.openai.received.length;
    const bodies: [Record<string, unknown>, string][] = [
      [{ model: 'gpt-4o-mini', Model: 'gpt-4o' }, 'Model'],
      [{ model: 'gpt-4o-mini', MODEL: 'gpt-4o' }, 'MODEL'],
      [{ model: 'gpt-4o-mini', Stream: true }, 'Stream'],
      [{ model: 'gpt-4o-mini', ſtream: true }, 'ſtream'],
      [{ model: 'gpt-4o-mini', stream: true, Stream_Options: { include_usage: false } }, 'Stream_Options'],
      [{ model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true, Include_usage: false } }, 'stream_options.Include_usage'],
    ];
    for (const [extra, field] of bodies) {
      const res = await postJson(`${ctx.gw.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'hi' }], ...extra }, { Authorization: `Bearer ${token}` });
      expect(expectError(res, 400, 'INVALID_REQUEST').details?.field).toBe(field);
    }
    expect(ctx.openai.received.length).toBe(received);
  });

  it('an answer without usage is charged its estimate against an LLM-token limit', async () => {
    const token = await mintHere({ requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { tokensPerMinute: 1000 } }, serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: 'sk-second-review-0123456789abcdef' }] } });
    ctx.openai.next({ kind: 'fail', status: 200, body: { id: 'x', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'no usage here' }, finish_reason: 'stop' }] } });
    expect((await postJson(`${ctx.gw.url}/v1/chat/completions`, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }, { Authorization: `Bearer ${token}` })).status).toBe(200);
    const info = await getJson<{ usage: { unit: string; used: number }[] }>(`${ctx.gw.url}/api/v1/oauth/tokeninfo`, { Authorization: `Bearer ${token}` });
    expect(info.json.usage.find((u) => u.unit === 'tokens')?.used).toBeGreaterThan(0);
  });

  it('a long local answer streams in a bounded number of events, whole', async () => {
    const token = await mintHere();
    const content = 'a '.repeat(200_000);
    const res = await fetch(`${ctx.gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      body: JSON.stringify({ model: 'chat:echo', stream: true, messages: [{ role: 'user', content }] }),
    });
    const text = await res.text();
    const events = text.split('\n\n').filter((e) => e.startsWith('data: {'));
    expect(events.length).toBeLessThanOrEqual(1002);
    expect(text.length).toBeLessThan(2 * content.length);
    const echoed = events.map((e) => (JSON.parse(e.slice(6)) as { choices: { delta: { content?: string } }[] }).choices[0]?.delta.content ?? '').join('');
    expect(echoed).toBe(content);
  });

  it('wrong admin keys on minting count as refused credentials; past the limit not even the right one is tried', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await mintRaw(ctx.gw.url, { requestAuthAndQuotas: {} }, { Authorization: `Bearer wrong-admin-key-${i}-0123456789` })).status);
    expect(statuses).toEqual([403, 403, 403, 403, 403, 429]);
    expect((await mintRaw(ctx.gw.url, { requestAuthAndQuotas: {} }, { Authorization: `Bearer ${ADMIN}` })).status).toBe(429);
    expect((await postForm(`${ctx.gw.url}/api/v1/oauth/introspect`, { token: 'x' }, { Authorization: `Bearer ${ADMIN}` })).status).toBe(429);
  });
});

describe('second review: a forged conversationState', () => {
  const ctx = gatewayBeforeOpenAiMock();

  it('nested too deep is a 400, never a 500; fields beyond role and content never reach the upstream', async () => {
    const token = await mint(ctx.gw.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: 'sk-forged-state-0123456789abcdef' }] } });
    const state = (messages: unknown): string => Buffer.from(JSON.stringify(messages)).toString('base64url');
    const deep = Buffer.from(`[{"role":"user","content":"x","x":${'['.repeat(100_000)}${']'.repeat(100_000)}}]`).toString('base64url');
    for (const serviceId of ['chat:dummy', 'chat:openai.com/gpt-4o-mini']) {
      const res = await postRaw(`${ctx.gw.url}/api/v1/process`, processBody(serviceId, 'hi', { conversationState: deep }), 'application/json', { Authorization: `Bearer ${token}` });
      expect(expectError(res, 400, 'INVALID_REQUEST').details?.field).toBe('request.conversationState');
    }
    const forged = state([{ role: 'assistant', content: 'earlier', tool_calls: [{ id: 'x', type: 'function', function: { name: 'rm', arguments: '{}' } }], name: 'evil' }]);
    const res = await postRaw(`${ctx.gw.url}/api/v1/process`, processBody('chat:openai.com/gpt-4o-mini', 'hi', { conversationState: forged }), 'application/json', { Authorization: `Bearer ${token}` });
    expect(res.status, res.text).toBe(200);
    expect(ctx.openai.received.at(-1)?.body.messages).toEqual([
      { role: 'assistant', content: 'earlier' },
      { role: 'user', content: 'hi' },
    ]);
  });
});

describe('third review: secrets through a chain, in error codes and headers, and admin tokens', () => {
  const VAULTED = 'sk-vaulted-network-secret-0123456789';
  const UPSTREAM_SECRET = 'sk-Q9vTz3KpLm7Wx2Rb8Nc4Hq7Zt';
  const ADMIN = 'third-review-admin-key-0123456789ab';
  let remote: Recorder;
  let dir: string;
  const ctx = {} as { openai: MockOpenAi; gw: TestGateway };
  beforeAll(async () => {
    remote = await startRecorder();
    ctx.openai = await MockOpenAi.start();
    dir = mkdtempSync(join(tmpdir(), 'aisbgw-review3-'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ services: { 'aisbreaker:network': { kind: 'aisbreaker', baseUrl: remote.url } } }));
    ctx.gw = await startGateway({ OPENAI_BASE_URL: ctx.openai.baseUrl, AISBREAKER_CONFIG: join(dir, 'config.json'), AISBREAKER_ADMIN_KEY: ADMIN, API_AUTH_FAILURE_LIMITS: '3/minute', AISBREAKER_NETWORK_URLS: 'http://127.0.0.1:9/gw' });
  });
  afterAll(async () => {
    await ctx.gw.close();
    await Promise.all([ctx.openai.close(), remote.close()]);
    rmSync(dir, { recursive: true, force: true });
  });
  const auth = (credential: string): Record<string, string> => ({ Authorization: `Bearer ${credential}` });

  it('a vaulted secret is not sent to a configured gateway that the chain tells to go on to a url', async () => {
    const vaulted = await mint(ctx.gw.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'aisbreaker:network', authSecret: VAULTED }] } }, auth(ADMIN));
    const onward = { serviceId: 'aisbreaker:network', url: 'http://127.0.0.1:9/gw', forward2ServiceProps: { serviceId: 'chat:dummy' } };
    const body = JSON.stringify({ service: { serviceId: 'aisbreaker:network', forward2ServiceProps: onward }, request: { inputs: [{ text: { role: 'user', content: 'hi' } }] } });
    const refused = await postRaw(`${ctx.gw.url}/api/v1/process`, body, 'application/json', auth(vaulted));
    expect(expectError(refused, 403, 'FORBIDDEN').details?.field).toBe('service.url');
    expect(remote.hits).toHaveLength(0);
    // without a url further down, the configured gateway gets the vaulted secret as before
    const plain = await postRaw(`${ctx.gw.url}/api/v1/process`, processBody('aisbreaker:network/chat:dummy', 'hi'), 'application/json', auth(vaulted));
    expect(plain.status, plain.text).toBe(200);
    expect(remote.hits.at(-1)?.authorization).toBe(`Bearer ${VAULTED}`);
  });

  it('an upstream echoing the secret in its error code, Retry-After or a streamed error event shows none of it', async () => {
    const token = await mint(ctx.gw.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: UPSTREAM_SECRET }] } }, auth(ADMIN));
    const call = (stream: boolean): Promise<Response> =>
      fetch(`${ctx.gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...auth(token) }, body: JSON.stringify({ model: 'gpt-4o-mini', stream, messages: [{ role: 'user', content: 'hi' }] }) });
    ctx.openai.next({ kind: 'fail', status: 401, body: { error: { message: 'bad', code: UPSTREAM_SECRET } } });
    const coded = await call(false);
    const codedText = await coded.text();
    expect(coded.status).toBe(401);
    ctx.openai.next({ kind: 'fail', status: 429, body: { error: { message: 'slow down' } }, headers: { 'Retry-After': UPSTREAM_SECRET } });
    const limited = await call(false);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBeNull();
    await limited.arrayBuffer();
    ctx.openai.next({ kind: 'error-chunk', body: { error: { message: `boom ${UPSTREAM_SECRET}`, code: UPSTREAM_SECRET } } });
    const streamed = await (await call(true)).text();
    expect(streamed).toContain('boom [redacted]');
    for (const text of [codedText, streamed]) {
      for (let i = 0; i + 8 <= UPSTREAM_SECRET.length; i++) expect(text).not.toContain(UPSTREAM_SECRET.slice(i, i + 8));
    }
    // a plain number is passed on as the upstream said it
    ctx.openai.next({ kind: 'fail', status: 429, body: { error: { message: 'slow down' } }, headers: { 'Retry-After': '7' } });
    expect((await call(false)).headers.get('retry-after')).toBe('7');
  });

  it('an admin token (or its child) mints no new token; a wrong admin credential beside a revoked token is refused and counted', async () => {
    const adminToken = await mint(ctx.gw.url, { requestAuthAndQuotas: {}, scopes: ['admin'] } as never, auth(ADMIN));
    const child = (await mintRaw(ctx.gw.url, { requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { requestsPerDay: 1 } } }, expirationTimeSpan: '60s' }, auth(adminToken))).json.access_token;
    for (const credential of [adminToken, child]) {
      const asSecret = await mintRaw(ctx.gw.url, { requestAuthAndQuotas: {}, clientSecret: credential, scopes: ['admin'], expirationTimeSpan: '365d' });
      expect(expectError(asSecret, 403, 'FORBIDDEN').details).toEqual({ scope: 'admin' });
    }
    // the admin token still introspects (that is what its scope is for)
    expect((await postForm(`${ctx.gw.url}/api/v1/oauth/introspect`, { token: child }, auth(adminToken))).status).toBe(200);

    const victim = await mint(ctx.gw.url, { requestAuthAndQuotas: {} }, auth(ADMIN));
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await postForm(`${ctx.gw.url}/api/v1/oauth/revoke`, { token: victim }, auth(`wrong-guess-${i}-0123456789abcdef`))).status);
    // the two refused clientSecret mints above count too: the third refusal fills the limit
    expect(statuses).toEqual([403, 429, 429]);
    // the holder alone (or with the token as bearer too) revokes it
    expect((await postForm<{ revoked: boolean }>(`${ctx.gw.url}/api/v1/oauth/revoke`, { token: victim }, auth(victim))).json.revoked).toBe(true);
  });
});

describe('fourth review: background responses, open access and fallbacks, tool-call nesting, circuits', () => {
  const OPEN_USER_KEY = 'sk-ant-open-user-own-key-0123456789';
  let anthropicLike: MockOpenAi;
  let openai: MockOpenAi;
  let dir: string;
  let gw: TestGateway;
  beforeAll(async () => {
    [anthropicLike, openai] = await Promise.all([MockOpenAi.start(), MockOpenAi.start()]);
    dir = mkdtempSync(join(tmpdir(), 'aisbgw-review4-'));
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({
        services: {
          'chat:primary': { kind: 'openai', baseUrl: anthropicLike.baseUrl, fallbacks: [{ service: 'chat:openai.com', model: 'gpt-4o' }] },
          'chat:openai.com': { kind: 'openai', baseUrl: openai.baseUrl },
          'chat:pool': { kind: 'openai', upstreams: [{ baseUrl: openai.baseUrl }], circuit: { failures: 1, cooldownMs: 60_000 } },
        },
      }),
    );
    gw = await startGateway({ AISBREAKER_CONFIG: join(dir, 'config.json'), AISBREAKER_OPEN_ACCESS: 'on' });
  });
  afterAll(async () => {
    await gw.close();
    await Promise.all([anthropicLike.close(), openai.close()]);
    rmSync(dir, { recursive: true, force: true });
  });
  const bearer = (credential: string): Record<string, string> => ({ Authorization: `Bearer ${credential}` });

  it('a background response is refused for a credential with LLM-token limits, allowed without', async () => {
    const metered = await mint(gw.url, { requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { tokensPerMinute: 1000 } }, serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: 'sk-metered-0123456789abcdef' }] } });
    const refused = await postJson(`${gw.url}/v1/responses`, { model: 'gpt-4o', input: 'Hi', background: true }, bearer(metered));
    expect(expectError(refused, 400, 'INVALID_REQUEST').details?.field).toBe('background');
    expect(openai.received.filter((r) => r.path.endsWith('/responses'))).toHaveLength(0);
    const unmetered = await mint(gw.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: 'sk-unmetered-0123456789abcdef' }] } });
    expect((await postJson(`${gw.url}/v1/responses`, { model: 'gpt-4o', input: 'Hi', background: true }, bearer(unmetered))).status).toBe(200);
  });

  it('an open-access caller\'s own key never goes to a fallback service', async () => {
    anthropicLike.next({ kind: 'fail', status: 503, body: { error: { message: 'down' } } });
    const before = openai.received.length;
    const res = await postJson(`${gw.url}/v1/chat/completions`, { model: 'chat:primary/claude-x', messages: [{ role: 'user', content: 'hi' }] }, bearer(OPEN_USER_KEY));
    expect(res.status).toBe(502);
    expect(res.headers.get('aisbreaker-served-by')).toBe('chat:primary');
    expect(openai.received.length).toBe(before);
    expect(anthropicLike.received.at(-1)?.headers.authorization).toBe(`Bearer ${OPEN_USER_KEY}`);
  });

  it('nesting hidden in a tool call\'s arguments is a 400 naming the limit, not a 500', async () => {
    const token = await mint(gw.url, { requestAuthAndQuotas: {} });
    const body = {
      model: 'chat:dummy',
      max_tokens: 10,
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'c', name: 'f', input: {} }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'c', content: 'r' }] },
      ],
    };
    // Messages to a chat service: the translation carries tool_use inputs; the reverse direction parses arguments
    expect((await postJson(`${gw.url}/v1/messages`, body, bearer(token))).status).toBe(200);
    const deep = '['.repeat(5000) + ']'.repeat(5000);
    const chat = {
      model: 'chat:anthropic.com/claude-x',
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: deep } }] },
        { role: 'tool', tool_call_id: 'c', content: 'r' },
      ],
    };
    const withSecret = await mint(gw.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:anthropic.com', authSecret: 'sk-ant-0123456789abcdef' }] } });
    const res = await postJson(`${gw.url}/v1/chat/completions`, chat, bearer(withSecret));
    expect(expectError(res, 400, 'INVALID_REQUEST').details).toMatchObject({ field: 'tool_calls.function.arguments', maxDepth: 128 });
  });

  it('a 500 (perhaps one request\'s own) does not take an upstream out of rotation; a 503 does', async () => {
    const token = await mint(gw.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: '', authSecret: 'sk-pool-0123456789abcdef' }] } });
    const call = async (): Promise<number> => (await postJson(`${gw.url}/v1/chat/completions`, { model: 'chat:pool/m', messages: [{ role: 'user', content: 'hi' }] }, bearer(token))).status;
    openai.next({ kind: 'fail', status: 500, body: { error: { message: 'this input crashed me' } } });
    expect([await call(), await call()]).toEqual([502, 200]);
    openai.next({ kind: 'fail', status: 503, body: { error: { message: 'overloaded' } } });
    expect([await call(), await call()]).toEqual([502, 503]);
  });
});

describe('fifth review: a lookalike or non-boolean background, a malformed path escape', () => {
  const ctx = gatewayBeforeOpenAiMock();

  it('"Background" (and a background that is no boolean) is refused like "Model", before any upstream call', async () => {
    const token = await mint(ctx.gw.url, { requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { tokensPerMinute: 1000 } }, serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: 'sk-fifth-review-0123456789abcdef' }] } });
    const cases: [Record<string, unknown>, string][] = [
      [{ Background: true }, 'Background'],
      [{ BACKGROUND: true }, 'BACKGROUND'],
      [{ background: 'true' }, 'background'],
      [{ background: 1 }, 'background'],
    ];
    for (const [extra, field] of cases) {
      const res = await postJson(`${ctx.gw.url}/v1/responses`, { model: 'gpt-4o', input: 'x', ...extra }, { Authorization: `Bearer ${token}` });
      expect([field, expectError(res, 400, 'INVALID_REQUEST').details?.field]).toEqual([field, field]);
    }
    expect(ctx.openai.received.filter((r) => r.path.endsWith('/responses'))).toHaveLength(0);
  });

  it('a path parameter that does not decode is a 400, with no error-level log line', async () => {
    for (const [method, path] of [['GET', '/v1/responses/%ff'], ['DELETE', '/v1/responses/%E0%A4%A'], ['GET', '/v1/deployments/%ff/limits']] as const) {
      const res = await fetch(`${ctx.gw.url}${path}`, { method });
      const body = (await res.json()) as { error: { code: string; details: { field: string } } };
      expect([path, res.status, body.error.code, body.error.details.field]).toEqual([path, 400, 'INVALID_REQUEST', '(path)']);
    }
    expect(ctx.gw.logs.filter((line) => (JSON.parse(line) as { level: number }).level >= 50)).toEqual([]);
  });
});

describe('sixth review: a duplicate include_usage', () => {
  const ctx = gatewayBeforeOpenAiMock();

  it('is not passed on as received: the upstream gets one include_usage, the one the gateway read', async () => {
    const token = await mint(ctx.gw.url, { requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { tokensPerDay: 100_000 } }, serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: 'sk-sixth-review-0123456789abcdef' }] } });
    for (const path of ['/v1/chat/completions', '/v1/completions']) {
      const body = path.endsWith('chat/completions')
        ? '{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":false,"include_usage":true},"messages":[{"role":"user","content":"hi"}]}'
        : '{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":false,"include_usage":true},"prompt":"hi"}';
      const res = await postRaw(`${ctx.gw.url}${path}`, body, 'application/json', { Authorization: `Bearer ${token}` });
      expect(res.status, res.text).toBe(200);
      const received = ctx.openai.received.at(-1);
      expect(received?.text.match(/include_usage/g), path).toHaveLength(1);
      expect(received?.body.stream_options?.include_usage).toBe(true);
    }
  });
});
