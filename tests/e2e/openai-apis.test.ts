import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, streamText } from 'ai';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mint, startGateway, type TestGateway } from '../helpers/gateway.js';
import { llmTokensUsed } from '../helpers/lifecycle-helpers.js';
import { MOCK_EMBEDDING_USAGE, MOCK_RESPONSE_ID, MOCK_USAGE, MockOpenAi, mockAnswer } from '../helpers/mock-openai.js';

const LOCAL_SECRET = 'local-model-server-key-0123456789';

const UPSTREAM_SECRET = 'sk-token-secret-for-responses-0123456';

interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

describe('OpenAI Responses, embeddings and completions APIs', () => {
  let mock: MockOpenAi;
  let gw: TestGateway;
  let dir: string;
  let token: string;

  const client = (apiKey = token): OpenAI => new OpenAI({ baseURL: `${gw.url}/v1`, apiKey, maxRetries: 0, timeout: 10_000 });
  const limitedToken = (requestQuotas: Record<string, Record<string, number>>): Promise<string> =>
    mint(gw.url, { requestAuthAndQuotas: { requestQuotas, serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: UPSTREAM_SECRET }] } });
  const tokensUsed = (credential: string): Promise<number> => llmTokensUsed(gw.url, credential);

  beforeAll(async () => {
    mock = await MockOpenAi.start();
    dir = mkdtempSync(join(tmpdir(), 'aisbgw-openai-apis-'));
    const configPath = join(dir, 'config.json');
    writeFileSync(
      configPath,
      JSON.stringify({
        services: {
          'chat:openai.com': { kind: 'openai', baseUrl: mock.baseUrl, models: ['gpt-4o-mini', 'text-embedding-3-small'] },
          // no models configured: /v1/models asks the upstream
          'chat:local': { kind: 'openai', baseUrl: mock.baseUrl, modelsFromUpstream: true },
          'chat:quiet': { kind: 'openai', baseUrl: mock.baseUrl },
          // its upstream refuses connections: its fallbacks stand in, those that answer the API
          'chat:primary': { kind: 'openai', baseUrl: 'http://127.0.0.1:9/v1', fallbacks: [{ service: 'chat:anthropic.com' }, { service: 'chat:openai.com', model: 'gpt-4o-mini' }] },
        },
      }),
    );
    // a dead loopback Anthropic: no request may leave the machine
    gw = await startGateway({ AISBREAKER_CONFIG: configPath, ANTHROPIC_BASE_URL: 'http://127.0.0.1:9' });
    token = await mint(gw.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: UPSTREAM_SECRET }, { serviceId: 'chat:anthropic.com', authSecret: 'sk-ant-x' }] } });
  });
  afterAll(async () => {
    await gw.close();
    await mock.close();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(() => {
    mock.received.length = 0;
  });

  describe('/v1/responses', () => {
    it('answers responses.create with the token secret upstream and the body passed through byte for byte', async () => {
      const response = await client().responses.create({ model: 'gpt-4o-mini', input: 'ping', store: false, include: ['reasoning.encrypted_content'], prompt_cache_key: 'k1' });
      expect(response.output_text).toBe(mockAnswer('ping'));
      expect(response.usage?.total_tokens).toBe(MOCK_USAGE.total_tokens);
      const received = mock.received[0];
      expect(received?.path).toBe('/v1/responses');
      expect(received?.headers.authorization).toBe(`Bearer ${UPSTREAM_SECRET}`);
      expect(received?.body).toMatchObject({ model: 'gpt-4o-mini', input: 'ping', store: false, include: ['reasoning.encrypted_content'], prompt_cache_key: 'k1' });
      expect(JSON.stringify(received?.headers) + received?.text).not.toContain(token);
    });

    it('streams the response.* events in order, unchanged (Codex CLI: namespace and web_search tools, client_metadata)', async () => {
      const stream = await client().responses.create({
        model: 'chat:openai.com/gpt-4o-mini',
        input: [{ role: 'user', content: [{ type: 'input_text', text: 'stream me' }] }],
        stream: true,
        tools: [{ type: 'web_search' }],
      });
      const types: string[] = [];
      let text = '';
      for await (const event of stream) {
        types.push(event.type);
        if (event.type === 'response.output_text.delta') text += event.delta;
      }
      expect(text).toBe(mockAnswer('stream me'));
      expect(types[0]).toBe('response.created');
      expect(types.at(-1)).toBe('response.completed');
      expect(mock.received[0]?.body.model).toBe('gpt-4o-mini');
      expect(mock.received[0]?.body.tools).toEqual([{ type: 'web_search' }]);
    });

    it('passes an error event of the stream on without the secret it may quote', async () => {
      mock.next({ kind: 'error-chunk', body: { type: 'error', code: `bad_key_${UPSTREAM_SECRET}`, message: `key ${UPSTREAM_SECRET} is over its quota`, param: null } });
      const res = await fetch(`${gw.url}/v1/responses`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` }, body: JSON.stringify({ model: 'gpt-4o-mini', input: 'x', stream: true }) });
      const text = await res.text();
      expect(text).toContain('event: error');
      expect(text).toContain('key [redacted] is over its quota');
      expect(text).not.toContain(UPSTREAM_SECRET);
    });

    it("works with the Vercel AI SDK's default openai(model) provider, generateText and streamText", async () => {
      const provider = createOpenAI({ baseURL: `${gw.url}/v1`, apiKey: token });
      const generated = await generateText({ model: provider('gpt-4o-mini'), prompt: 'vercel', maxRetries: 0 });
      expect(generated.text).toBe(mockAnswer('vercel'));
      expect(generated.usage.totalTokens).toBe(MOCK_USAGE.total_tokens);
      const streamed = streamText({ model: provider('gpt-4o-mini'), prompt: 'vercel stream', maxRetries: 0 });
      let text = '';
      for await (const delta of streamed.textStream) text += delta;
      expect(text).toBe(mockAnswer('vercel stream'));
      expect(mock.received.map((r) => r.path)).toEqual(['/v1/responses', '/v1/responses']);
    });

    it('retrieves and deletes a stored response through the default service; refuses an id that is no plain name', async () => {
      const stored = await client().responses.retrieve(MOCK_RESPONSE_ID);
      expect(stored.id).toBe(MOCK_RESPONSE_ID);
      const deleted = await fetch(`${gw.url}/v1/responses/${MOCK_RESPONSE_ID}`, { method: 'DELETE', headers: { Authorization: `Bearer ${token}` } });
      expect(await deleted.json()).toEqual({ id: MOCK_RESPONSE_ID, object: 'response', deleted: true });
      expect(mock.received.map((r) => `${r.method} ${r.path}`)).toEqual([`GET /v1/responses/${MOCK_RESPONSE_ID}`, `DELETE /v1/responses/${MOCK_RESPONSE_ID}`]);
      expect(mock.received[0]?.headers.authorization).toBe(`Bearer ${UPSTREAM_SECRET}`);

      const missing = await client().responses.retrieve('resp_unknown').catch((err: unknown) => err);
      expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
      const bad = await fetch(`${gw.url}/v1/responses/a%2F..%2Fmodels`, { headers: { Authorization: `Bearer ${token}` } });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as ErrorBody).error).toMatchObject({ code: 'INVALID_REQUEST', details: { field: 'id' } });
    });

    it('falls back to the next listed service that answers the Responses API when every upstream failed before answering', async () => {
      const withPrimary = await mint(gw.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:primary', authSecret: 'sk-primary-0123456789' }, { serviceId: 'chat:openai.com', authSecret: UPSTREAM_SECRET }, { serviceId: 'chat:anthropic.com', authSecret: 'sk-ant-x' }] } });
      const response = await client(withPrimary).responses.create({ model: 'chat:primary/some-model', input: 'fall back' });
      expect(response.output_text).toBe(mockAnswer('fall back'));
      // the anthropic fallback (no Responses API) was passed over
      expect(mock.received.map((r) => `${r.path} ${String(r.body.model)} ${String(r.headers.authorization)}`)).toEqual([`/v1/responses gpt-4o-mini Bearer ${UPSTREAM_SECRET}`]);
    });

    it('refuses other kinds of service with a 400 naming what they answer', async () => {
      for (const model of ['chat:dummy', 'chat:anthropic.com/claude-sonnet-4-5']) {
        const refused = await client()
          .responses.create({ model, input: 'x' })
          .catch((err: unknown) => err);
        expect(refused).toBeInstanceOf(OpenAI.BadRequestError);
        const error = (refused as InstanceType<typeof OpenAI.BadRequestError>).error as ErrorBody['error'];
        expect(error.code).toBe('INVALID_REQUEST');
        expect(error.message).toMatch(/does not offer POST \/v1\/responses; it answers POST \/v1\/chat\/completions, POST \/v1\/messages, /);
      }
      expect(mock.received).toHaveLength(0);
    });

    it('counts response.completed usage against LLM-token limits, JSON and streamed', async () => {
      const limited = await limitedToken({ globalRequestLimits: { tokensPerMinute: 30 } });
      await client(limited).responses.create({ model: 'gpt-4o-mini', input: 'x' });
      expect(await tokensUsed(limited)).toBe(MOCK_USAGE.total_tokens);
      const stream = await client(limited).responses.create({ model: 'gpt-4o-mini', input: 'x', stream: true });
      for await (const _ of stream) void _;
      expect(await tokensUsed(limited)).toBe(2 * MOCK_USAGE.total_tokens);
      const refused = await client(limited)
        .responses.create({ model: 'gpt-4o-mini', input: 'x' })
        .catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
      expect(((refused as InstanceType<typeof OpenAI.RateLimitError>).error as ErrorBody['error']).details).toMatchObject({ unit: 'tokens', limit: 30 });
    });

    it('names a bad model or stream field: 400', async () => {
      for (const [body, field] of [
        [{ input: 'x' }, 'model'],
        [{ model: '', input: 'x' }, 'model'],
        [{ model: 'gpt-4o-mini', input: 'x', stream: 'yes' }, 'stream'],
        // keys a case-insensitive upstream decoder (Go's) would take for the checked ones
        [{ model: 'gpt-4o-mini', Model: 'chat:other/x', input: 'x' }, 'Model'],
        [{ model: 'gpt-4o-mini', input: 'x', ſtream: true }, 'ſtream'],
        [{ model: 'gpt-4o-mini', input: 'x', stream: true, stream_options: { Include_Usage: false } }, 'stream_options.Include_Usage'],
      ] as const) {
        const res = await fetch(`${gw.url}/v1/responses`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
        expect(res.status).toBe(400);
        expect(((await res.json()) as ErrorBody).error).toMatchObject({ code: 'INVALID_REQUEST', details: { field } });
      }
      expect(mock.received).toHaveLength(0);
    });
  });

  describe('/v1/embeddings and /v1/completions', () => {
    it('answers embeddings.create; the bare model goes to the service listing it; usage counted', async () => {
      const limited = await limitedToken({ globalRequestLimits: { tokensPerDay: 1000 } });
      const embeddings = await client(limited).embeddings.create({ model: 'text-embedding-3-small', input: ['a', 'b'], encoding_format: 'float' });
      expect(embeddings.data.map((d) => d.embedding)).toEqual([
        [0.25, -0.5, 1],
        [0.25, -0.5, 1],
      ]);
      expect(mock.received[0]?.path).toBe('/v1/embeddings');
      expect(mock.received[0]?.body).toEqual({ model: 'text-embedding-3-small', input: ['a', 'b'], encoding_format: 'float' });
      expect(await tokensUsed(limited)).toBe(MOCK_EMBEDDING_USAGE.total_tokens);
    });

    it('answers completions.create, JSON and streamed (the stream asks for its usage, hidden from a caller who did not)', async () => {
      const limited = await limitedToken({ globalRequestLimits: { tokensPerDay: 1000 } });
      const completion = await client(limited).completions.create({ model: 'gpt-4o-mini', prompt: 'complete me' });
      expect(completion.choices[0]?.text).toBe(mockAnswer('complete me'));
      const stream = await client(limited).completions.create({ model: 'gpt-4o-mini', prompt: 'stream me', stream: true });
      let text = '';
      let sawUsage = false;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.text ?? '';
        sawUsage ||= chunk.usage != null;
      }
      expect(text).toBe(mockAnswer('stream me'));
      expect(sawUsage).toBe(false);
      expect(mock.received[1]?.body.stream_options).toEqual({ include_usage: true });
      expect(await tokensUsed(limited)).toBe(2 * MOCK_USAGE.total_tokens);
    });

    it('bounds the body of every route: over 4 MB 413 before the upstream', async () => {
      for (const path of ['/v1/responses', '/v1/embeddings', '/v1/completions']) {
        const res = await fetch(`${gw.url}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` }, body: JSON.stringify({ model: 'gpt-4o-mini', input: 'x'.repeat(4 * 1024 * 1024) }) });
        expect(res.status).toBe(413);
        expect(((await res.json()) as ErrorBody).error.code).toBe('PAYLOAD_TOO_LARGE');
      }
      expect(mock.received).toHaveLength(0);
    });

    it('refuses embeddings of a local service, naming what it answers', async () => {
      const refused = await client()
        .embeddings.create({ model: 'chat:echo', input: 'x' })
        .catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(OpenAI.BadRequestError);
      expect((refused as Error).message).toContain('service "chat:echo" does not offer POST /v1/embeddings; it answers POST /v1/chat/completions, POST /v1/messages, POST /api/v1/process');
    });

    it('holds each route to the request quotas: 429 past the limit, before the upstream', async () => {
      const limited = await limitedToken({ perClientRequestLimits: { requestsPerMinute: 3 } });
      await client(limited).responses.create({ model: 'gpt-4o-mini', input: 'x' });
      await client(limited).embeddings.create({ model: 'text-embedding-3-small', input: 'x' });
      await client(limited).completions.create({ model: 'gpt-4o-mini', prompt: 'x' });
      for (const call of [
        () => client(limited).responses.create({ model: 'gpt-4o-mini', input: 'x' }),
        () => client(limited).embeddings.create({ model: 'text-embedding-3-small', input: 'x' }),
        () => client(limited).completions.create({ model: 'gpt-4o-mini', prompt: 'x' }),
      ]) {
        const refused = await call().catch((err: unknown) => err);
        expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
        expect((refused as InstanceType<typeof OpenAI.RateLimitError>).headers?.get('retry-after')).toMatch(/^\d+$/);
      }
      expect(mock.received).toHaveLength(3);
    });
  });

  describe('/v1/models', () => {
    it("lists a service's configured models, and asks an upstream without configured models with the caller's secret, kept a minute", async () => {
      const local = await mint(gw.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:local', authSecret: LOCAL_SECRET }] } });
      const ids = async (credential: string): Promise<string[]> => (await client(credential).models.list()).data.map((m) => m.id);
      expect(await ids(local)).toEqual(['chat:dummy', 'chat:echo', 'chat:local', 'chat:local/llama3:8b', 'chat:local/qwen2.5-coder']);
      expect(await ids(local)).toEqual(['chat:dummy', 'chat:echo', 'chat:local', 'chat:local/llama3:8b', 'chat:local/qwen2.5-coder']);
      expect(mock.received.map((r) => `${r.method} ${r.path} ${String(r.headers.authorization)}`)).toEqual([`GET /v1/models Bearer ${LOCAL_SECRET}`]);
      // configured models are listed as configured, the upstream is not asked
      expect(await ids(token)).toEqual(expect.arrayContaining(['chat:openai.com/gpt-4o-mini', 'chat:openai.com/text-embedding-3-small', 'chat:anthropic.com']));
      expect(mock.received).toHaveLength(1);
    });

    it('does not send a secret for every service ("") to every upstream just to list, nor ask a service not configured to', async () => {
      const everywhere = await mint(gw.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: '', authSecret: LOCAL_SECRET }] } });
      expect((await client(everywhere).models.list()).data.map((m) => m.id)).toContain('chat:local');
      const quiet = await mint(gw.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:quiet', authSecret: LOCAL_SECRET }] } });
      expect((await client(quiet).models.list()).data.map((m) => m.id)).toEqual(['chat:dummy', 'chat:echo', 'chat:quiet']);
      expect(mock.received).toHaveLength(0);
    });

    it('lists the service alone when its upstream cannot list, and asks again next time', async () => {
      const local = await mint(gw.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:local', authSecret: `${LOCAL_SECRET}-2` }] } });
      mock.next({ kind: 'fail', status: 500, body: { error: { message: 'down' } } });
      expect((await client(local).models.list()).data.map((m) => m.id)).toEqual(['chat:dummy', 'chat:echo', 'chat:local']);
      expect((await client(local).models.list()).data.map((m) => m.id)).toContain('chat:local/llama3:8b');
      expect(mock.received).toHaveLength(2);
    });
  });
});
