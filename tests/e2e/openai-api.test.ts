import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mint, startGateway, type TestGateway } from '../helpers/gateway.js';
import { getJson, within, type TokenInfo } from '../helpers/lifecycle-helpers.js';
import { MOCK_USAGE, MockOpenAi, mockAnswer } from '../helpers/mock-openai.js';

const UPSTREAM_SECRET = 'sk-token-secret-0123456789abcdef';
const SERVER_KEY = 'sk-server-own-key-9876543210zyxw';
const OPERATOR_KEY = 'operator-key-for-openai-0123456789';
const METERED_KEY = 'metered-operator-key-abcdefghij0123';
const DUMMY_ANSWER = (text: string): string => `Hello, the answer to '${text}' from DummyAssistantService is unknown ...`;

function client(gw: TestGateway, apiKey: string): OpenAI {
  return new OpenAI({ baseURL: `${gw.url}/v1`, apiKey, maxRetries: 0, timeout: 10_000 });
}

async function chat(gw: TestGateway, credential: string, body: unknown): Promise<Response> {
  return fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${credential}` },
    body: JSON.stringify(body),
  });
}

async function sseData(res: Response): Promise<string[]> {
  const text = await res.text();
  return text
    .split('\n')
    .filter((line) => line.startsWith('data: '))
    .map((line) => line.slice('data: '.length));
}

describe('OpenAI-compatible API in front of an OpenAI upstream', () => {
  let mock: MockOpenAi;
  let gw: TestGateway;
  let dir: string;
  let token: string;
  let dummyOnlyToken: string;

  beforeAll(async () => {
    mock = await MockOpenAi.start();
    dir = mkdtempSync(join(tmpdir(), 'aisbgw-openai-'));
    const configPath = join(dir, 'config.json');
    writeFileSync(
      configPath,
      JSON.stringify({
        services: { 'chat:openai.com': { kind: 'openai', baseUrl: mock.baseUrl, models: ['gpt-4o-mini', 'gpt-4o'] } },
        keys: { [OPERATOR_KEY]: { project: 'ProjectA', role: 'app' }, [METERED_KEY]: { project: 'ProjectB', role: 'metered', scopes: ['inference', 'analytics:read'] } },
        roles: { app: { limits: { 'gpt-4o-mini': {}, 'chat:dummy': {} } }, metered: { limits: { 'gpt-4o-mini': { minute: 30, requestHour: 100 } } } },
      }),
    );
    gw = await startGateway({ AISBREAKER_CONFIG: configPath, OPENAI_API_KEY: SERVER_KEY });
    token = await mint(gw.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: UPSTREAM_SECRET }] } });
    dummyOnlyToken = await mint(gw.url, { requestAuthAndQuotas: {} });
  });
  afterAll(async () => {
    await gw.close();
    await mock.close();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(() => {
    mock.received.length = 0;
    mock.chunkDelayMs = 0;
  });

  it('answers through the official OpenAI client with the token as apiKey; only the token secret reaches the upstream', async () => {
    const completion = await client(gw, token).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'ping' }] });
    expect(completion.choices[0]?.message.content).toBe(mockAnswer('ping'));
    expect(completion.usage?.total_tokens).toBe(MOCK_USAGE.total_tokens);

    expect(mock.received).toHaveLength(1);
    const received = mock.received[0];
    expect(received?.headers.authorization).toBe(`Bearer ${UPSTREAM_SECRET}`);
    expect(received?.body.model).toBe('gpt-4o-mini');
    // nothing of the caller's credential or the server's own key travels upstream
    const everything = JSON.stringify(received?.headers) + received?.text;
    expect(everything).not.toContain(token);
    expect(everything).not.toContain('aisbreaker_');
    expect(everything).not.toContain(SERVER_KEY);
  });

  it('forwards the fields it does not use as they are, and maps "<serviceId>/<engine>" to the engine', async () => {
    const res = await chat(gw, token, { model: 'chat:openai.com/gpt-4o', messages: [{ role: 'user', content: 'x' }], temperature: 0.25, tools: [{ type: 'function', function: { name: 'f' } }] });
    expect(res.status).toBe(200);
    expect(mock.received[0]?.body).toMatchObject({ model: 'gpt-4o', temperature: 0.25, tools: [{ type: 'function', function: { name: 'f' } }] });
  });

  it('streams chunk by chunk through the OpenAI client, ending the stream with [DONE]', async () => {
    mock.chunkDelayMs = 5;
    const stream = await client(gw, token).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'stream me' }], stream: true });
    let text = '';
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      text += chunk.choices[0]?.delta.content ?? '';
    }
    expect(text).toBe(mockAnswer('stream me'));
    expect(chunks).toBeGreaterThan(3);

    const raw = await chat(gw, token, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'raw' }], stream: true });
    expect(raw.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const data = await sseData(raw);
    expect(data.at(-1)).toBe('[DONE]');
    // the usage chunk the gateway asked for on its own is not passed to a caller that did not ask
    expect(data.slice(0, -1).every((d) => !d.includes('"usage"'))).toBe(true);
    expect(mock.received.at(-1)?.body.stream_options).toEqual({ include_usage: true });
  });

  it('passes the usage chunk on when the caller asks for it', async () => {
    const stream = await client(gw, token).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'u' }], stream: true, stream_options: { include_usage: true } });
    let usage: number | undefined;
    for await (const chunk of stream) usage = chunk.usage?.total_tokens ?? usage;
    expect(usage).toBe(MOCK_USAGE.total_tokens);
  });

  it('counts the upstream usage against LLM-token limits, streams included', async () => {
    const limited = await mint(gw.url, {
      requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { tokensPerMinute: 30 } }, serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: UPSTREAM_SECRET }] },
    });
    const ask = (stream: boolean): Promise<Response> => chat(gw, limited, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'count me' }], stream });
    const first = await ask(false);
    expect(first.status).toBe(200);
    expect(first.headers.get('x-ratelimit-limit-tokens')).toBe('30');
    await first.text();
    // 20 of 30 used: admitted; its stream's usage (asked for by the gateway) brings it to 40
    const second = await ask(true);
    expect(second.status).toBe(200);
    await second.text();
    const third = await ask(false);
    expect(third.status).toBe(429);
    const body = (await third.json()) as { error: { code: string; message: string; details: { window: string; limit: number } } };
    expect(body.error).toMatchObject({ code: 'RATE_LIMITED', details: { window: 'minute', unit: 'tokens', limit: 30 } });
    expect(body.error.message).toContain('30 LLM tokens per minute');
    expect(mock.received).toHaveLength(2);
  });

  it('charges a stream the caller leaves early an estimate of what the upstream billed, not nothing', async () => {
    const limited = await mint(gw.url, {
      requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { tokensPerDay: 100_000 } }, serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: UPSTREAM_SECRET }] },
    });
    const used = async (): Promise<number> =>
      (await getJson<TokenInfo>(`${gw.url}/api/v1/oauth/tokeninfo`, { Authorization: `Bearer ${limited}` })).json.usage.find((u) => u.unit === 'tokens')?.used ?? -1;
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'one two three four five six seven eight' }], stream: true };
    mock.chunkDelayMs = 200;
    try {
      const controller = new AbortController();
      const res = await fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${limited}` },
        body: JSON.stringify(body),
        signal: controller.signal,
      });
      const reader = res.body?.getReader();
      await reader?.read(); // the first chunk, then the caller leaves
      controller.abort();
    } finally {
      mock.chunkDelayMs = 0;
    }
    // ~4 bytes per prompt token of the request as sent upstream, plus a token per chunk passed on
    const requestBytes = Buffer.byteLength(JSON.stringify({ ...body, stream_options: { include_usage: true } }));
    await within(3000, async () => (await used()) > 0);
    const charged = await used();
    expect(charged).toBeGreaterThanOrEqual(Math.ceil(requestBytes / 4));
    expect(charged).toBeLessThanOrEqual(Math.ceil(requestBytes / 4) + 3);
    // a whole stream is charged what the upstream reports
    const whole = await chat(gw, limited, { ...body, messages: [{ role: 'user', content: 'x' }] });
    await whole.text();
    expect(await used()).toBe(charged + MOCK_USAGE.total_tokens);
  });

  it('meters an operator key in LLM tokens per model from the upstream usage, streams included', async () => {
    const ask = (stream: boolean): Promise<Response> => chat(gw, METERED_KEY, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'meter me' }], stream });
    expect((await (await ask(false)).text()).length).toBeGreaterThan(0);
    const streamed = await ask(true);
    expect(streamed.status).toBe(200);
    await streamed.text();
    const limits = (await (await fetch(`${gw.url}/v1/deployments/gpt-4o-mini/limits`, { headers: { Authorization: `Bearer ${METERED_KEY}` } })).json()) as Record<string, { total: number; used: number }>;
    expect(limits.minuteTokenStats).toEqual({ total: 30, used: 2 * MOCK_USAGE.total_tokens });
    expect(limits.hourRequestStats).toEqual({ total: 100, used: 2 });
    const refused = await ask(false);
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as { error: { details: { window: string; limit: number } } }).error.details).toMatchObject({ window: 'minute', limit: 30 });
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/aisbgw_llm_tokens_total\{project="ProjectB",service="chat:openai.com"\} 40/);
    expect(metrics).not.toContain(METERED_KEY);
  });

  it('refuses a token without a secret for the service with 401, readable by the OpenAI client', async () => {
    const err = await client(gw, dummyOnlyToken)
      .chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    const apiError = err as InstanceType<typeof OpenAI.APIError>;
    expect(apiError.status).toBe(401);
    expect(apiError.code).toBe('MISSING_API_KEY');
    expect(apiError.message).toContain('no secret for service "chat:openai.com/gpt-4o-mini"');
    // the server's own OPENAI_API_KEY is never lent to a minted token
    expect(mock.received).toHaveLength(0);
  });

  it('serves chat:dummy and chat:echo in the OpenAI format, JSON and streaming', async () => {
    const openai = client(gw, dummyOnlyToken);
    const json = await openai.chat.completions.create({ model: 'chat:dummy', messages: [{ role: 'user', content: 'Who are you?' }] });
    expect(json.choices[0]?.message.content).toBe(DUMMY_ANSWER('Who are you?'));
    expect(json.object).toBe('chat.completion');

    const stream = await openai.chat.completions.create({ model: 'chat:echo', messages: [{ role: 'user', content: [{ type: 'text', text: 'echo these words back' }] }], stream: true });
    let text = '';
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe('echo these words back');
    expect(finish).toBe('stop');
  });

  it('lists the models a credential may use', async () => {
    const withSecret = await client(gw, token).models.list();
    expect(withSecret.data.map((m) => m.id)).toEqual(expect.arrayContaining(['chat:dummy', 'chat:echo', 'chat:openai.com', 'chat:openai.com/gpt-4o-mini', 'chat:openai.com/gpt-4o']));
    const without = await client(gw, dummyOnlyToken).models.list();
    const ids = without.data.map((m) => m.id);
    expect(ids).toContain('chat:dummy');
    expect(ids.some((id) => id.startsWith('chat:openai.com'))).toBe(false);
    const keyModels = await client(gw, OPERATOR_KEY).models.list();
    expect(keyModels.data.map((m) => m.id)).toEqual(['chat:dummy', 'gpt-4o-mini']);
  });

  it('uses the server key for operator API keys, and refuses models their role does not list', async () => {
    const completion = await client(gw, OPERATOR_KEY).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'op' }] });
    expect(completion.choices[0]?.message.content).toBe(mockAnswer('op'));
    expect(mock.received[0]?.headers.authorization).toBe(`Bearer ${SERVER_KEY}`);

    const refused = await chat(gw, OPERATOR_KEY, { model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] });
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('FORBIDDEN');
    expect(mock.received).toHaveLength(1);
  });

  it('keeps an upstream 4xx status and message, without the secret it quoted', async () => {
    mock.next({ kind: 'fail', status: 401, body: { error: { message: `Incorrect API key provided: ${UPSTREAM_SECRET}. Or sk-tok***cdef.`, type: 'invalid_request_error', code: 'invalid_api_key' } } });
    const err = (await client(gw, token)
      .chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err.status).toBe(401);
    expect(err.message).toContain('Incorrect API key provided');
    expect(err.message).not.toContain(UPSTREAM_SECRET);
    expect(err.message).not.toContain('sk-tok');
    expect(gw.logs.join('\n')).not.toContain(UPSTREAM_SECRET);

    mock.next({ kind: 'fail', status: 404, body: { error: { message: 'The model `nope` does not exist', code: 'model_not_found' } } });
    const notFound = await chat(gw, token, { model: 'nope', messages: [{ role: 'user', content: 'x' }] });
    expect(notFound.status).toBe(404);
    const body = (await notFound.json()) as { error: { code: string; message: string; details: { upstreamCode: string } } };
    expect(body.error).toMatchObject({ code: 'UPSTREAM_ERROR', message: 'The model `nope` does not exist', details: { upstreamCode: 'model_not_found' } });
  });

  it('turns an upstream 5xx into 502 UPSTREAM_ERROR and counts it', async () => {
    mock.next({ kind: 'fail', status: 500, body: { error: { message: 'boom' } } });
    const res = await chat(gw, token, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
    expect(res.status).toBe(502);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('UPSTREAM_ERROR');
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/aisbgw_upstream_errors_total\{service="chat:openai.com",kind="http-500"\} 1/);
    expect(metrics).toMatch(/aisbgw_llm_tokens_total\{project="ProjectA",service="chat:openai.com"\} 20/);
  });

  it('gives 502 when the upstream drops the connection, and an error event when it drops mid-stream', async () => {
    mock.next({ kind: 'drop' });
    const dropped = await chat(gw, token, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
    expect(dropped.status).toBe(502);

    mock.next({ kind: 'drop-mid-stream' });
    const stream = await client(gw, token).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'one two three four' }], stream: true });
    const seen: string[] = [];
    const err = await (async () => {
      for await (const chunk of stream) seen.push(chunk.choices[0]?.delta.content ?? '');
    })().catch((e: unknown) => e);
    expect(seen.length).toBeGreaterThan(0);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as Error).message).toContain('connection broke');
    // the gateway still serves
    expect((await chat(gw, token, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'ok' }] })).status).toBe(200);
  });

  it('ends a stream the upstream cut short (no [DONE]) with an error, not as a whole answer', async () => {
    mock.next({ kind: 'end-without-done' });
    const stream = await client(gw, token).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'one two three four' }], stream: true });
    const err = await (async () => {
      for await (const chunk of stream) void chunk;
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as Error).message).toContain('before the answer was complete');
  });

  it('cuts a stream whose upstream sends a line that never ends (beyond 16 MB): an error event, memory not filled', async () => {
    mock.next({ kind: 'endless-line', chars: 20 * 1024 * 1024 });
    const stream = await client(gw, token).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'one two three four' }], stream: true });
    const seen: string[] = [];
    const err = await (async () => {
      for await (const chunk of stream) seen.push(chunk.choices[0]?.delta.content ?? '');
    })().catch((e: unknown) => e);
    expect(seen).toHaveLength(1); // the first chunk went through before the endless line
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as Error).message).toContain('characters in one stream event or answer');
    expect((await chat(gw, token, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'ok' }] })).status).toBe(200);
  });

  it('keeps an upstream 429 as RATE_LIMITED with scope upstream, and never shows a secret it quotes', async () => {
    // a secret without a well-known prefix, quoted whole past the first 1000 chars and masked
    const plainSecret = 'azure0123456789abcdef0123456789ab';
    const azureToken = await mint(gw.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: plainSecret }] } });
    mock.next({
      kind: 'fail',
      status: 429,
      body: { error: { message: `${'x'.repeat(990)} key ${plainSecret} and ${plainSecret.slice(0, 8)}***${plainSecret.slice(-4)} is over quota`, code: 'rate_limit_exceeded' } },
    });
    const res = await chat(gw, azureToken, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
    expect(res.status).toBe(429);
    const body = (await res.json()) as { error: { code: string; message: string; details: { scope: string; upstreamCode: string } } };
    expect(body.error.code).toBe('RATE_LIMITED');
    expect(body.error.details).toMatchObject({ scope: 'upstream', upstreamCode: 'rate_limit_exceeded' });
    expect(body.error.message.length).toBeLessThanOrEqual(1000);
    expect(body.error.message).not.toContain(plainSecret.slice(0, 8));
    expect(body.error.message).not.toContain(plainSecret.slice(-6));
  });

  it('cancels the upstream call at once when the client goes away', async () => {
    mock.chunkDelayMs = 200;
    const controller = new AbortController();
    const abortable = fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'abort me' }], stream: true }),
      signal: controller.signal,
    });
    const res = await abortable;
    const reader = res.body?.getReader();
    await reader?.read();
    controller.abort();
    await mock.waitForEarlyClose();
    expect(mock.received.some((r) => r.closedEarly && r.body.messages?.[0]?.content === 'abort me')).toBe(true);
  });

  it('refuses bad requests with 400 naming the field, and nothing reaches the upstream', async () => {
    const cases: [unknown, string][] = [
      [{ messages: [{ role: 'user', content: 'x' }] }, 'model'],
      [{ model: '', messages: [{ role: 'user', content: 'x' }] }, 'model'],
      [{ model: 'gpt-4o-mini' }, 'messages'],
      [{ model: 'gpt-4o-mini', messages: [] }, 'messages'],
      [{ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], stream: 'yes' }, 'stream'],
      [{ model: 'x'.repeat(200), messages: [{ role: 'user', content: 'x' }] }, 'model'],
      [{ model: 'chat:openai.com/', messages: [{ role: 'user', content: 'x' }] }, 'model'],
    ];
    for (const [body, field] of cases) {
      const res = await chat(gw, token, body);
      expect(res.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      const json = (await res.json()) as { error: { code: string; details: { field: string } } };
      expect(json.error.code).toBe('INVALID_REQUEST');
      expect(json.error.details.field).toBe(field);
    }
    const wrongType = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'Content-Type': 'text/plain', Authorization: `Bearer ${token}` }, body: '{}' });
    expect(wrongType.status).toBe(400);
    const unknown = await chat(gw, token, { model: 'chat:nowhere/x', messages: [{ role: 'user', content: 'x' }] });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe('UNKNOWN_SERVICE');
    expect(mock.received).toHaveLength(0);
    // nothing was lost: the next good request is served
    expect((await chat(gw, token, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'fine' }] })).status).toBe(200);
  });
});

describe('upstream timeouts and reachability', () => {
  let mock: MockOpenAi;
  let gw: TestGateway;
  let dir: string;
  let token: string;

  beforeAll(async () => {
    mock = await MockOpenAi.start();
    const closed = await MockOpenAi.start();
    const closedPort = closed.port;
    await closed.close();
    dir = mkdtempSync(join(tmpdir(), 'aisbgw-timeouts-'));
    const configPath = join(dir, 'config.json');
    writeFileSync(
      configPath,
      JSON.stringify({
        services: {
          'chat:slow': { kind: 'openai', baseUrl: mock.baseUrl, timeouts: { firstByteMs: 300, idleMs: 300 } },
          'chat:gone': { kind: 'openai', baseUrl: `http://127.0.0.1:${closedPort}/v1` },
        },
      }),
    );
    gw = await startGateway({ AISBREAKER_CONFIG: configPath });
    token = await mint(gw.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: '', authSecret: UPSTREAM_SECRET }] } });
  });
  afterAll(async () => {
    await gw.close();
    await mock.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 503 UPSTREAM_UNAVAILABLE when the upstream cannot be reached', async () => {
    const res = await chat(gw, token, { model: 'chat:gone/m', messages: [{ role: 'user', content: 'x' }] });
    expect(res.status).toBe(503);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(body.error.message).not.toContain('127.0.0.1');
  });

  it('answers 504 UPSTREAM_TIMEOUT when the upstream stalls before its first byte', async () => {
    mock.next({ kind: 'stall' });
    const started = Date.now();
    const res = await chat(gw, token, { model: 'chat:slow/m', messages: [{ role: 'user', content: 'x' }] });
    expect(res.status).toBe(504);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('UPSTREAM_TIMEOUT');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('ends a stream that goes idle with an error event instead of hanging', async () => {
    mock.next({ kind: 'stall-mid-stream' });
    const res = await chat(gw, token, { model: 'chat:slow/m', messages: [{ role: 'user', content: 'a b c' }], stream: true });
    expect(res.status).toBe(200);
    const data = await sseData(res);
    const last = JSON.parse(data.at(-1) ?? '{}') as { error?: { code: string } };
    expect(last.error?.code).toBe('UPSTREAM_TIMEOUT');
  });
});
