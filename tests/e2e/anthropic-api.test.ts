import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { parseCatalog } from '../../src/services/catalog.js';
import { mint, startGateway, type TestGateway } from '../helpers/gateway.js';
import { llmTokensUsed, within } from '../helpers/lifecycle-helpers.js';
import { MOCK_ANTHROPIC_TOTAL, MOCK_COUNTED_TOKENS, MOCK_TOOL_INPUT, MockAnthropic, mockClaudeAnswer } from '../helpers/mock-anthropic.js';
import { MOCK_TOOL_ARGUMENTS, MOCK_USAGE, MockOpenAi, mockAnswer } from '../helpers/mock-openai.js';

const ANTHROPIC_SECRET = 'sk-ant-token-secret-0123456789abcdef';
const OPENAI_SECRET = 'sk-openai-token-secret-0123456789ab';
const SERVER_ANTHROPIC_KEY = 'sk-ant-server-own-key-9876543210zy';
const OPERATOR_KEY = 'operator-key-for-claude-0123456789';
const CLAUDE = 'claude-sonnet-4-5';
/** listed by the configured chat:claude-proxy: bare, it goes there on every route */
const PROXIED_CLAUDE = 'claude-proxied-1';
const PROXY_SECRET = 'sk-ant-proxy-secret-0123456789abcdef';
const WEATHER_TOOL = { name: 'get_weather', description: 'Weather of a city', input_schema: { type: 'object' as const, properties: { city: { type: 'string' } }, required: ['city'] } };

function anthropic(gw: TestGateway, apiKey: string): Anthropic {
  return new Anthropic({ baseURL: gw.url, apiKey, maxRetries: 0, timeout: 10_000 });
}

function openai(gw: TestGateway, apiKey: string): OpenAI {
  return new OpenAI({ baseURL: `${gw.url}/v1`, apiKey, maxRetries: 0, timeout: 10_000 });
}

async function postMessages(gw: TestGateway, headers: Record<string, string>, body: unknown, path = '/v1/messages'): Promise<Response> {
  return fetch(`${gw.url}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

interface AnthropicErrorBody {
  type: string;
  error: { type: string; message: string; code: string; details?: Record<string, unknown> };
}

/** The `event:` names of an event stream, in order. */
function eventNames(text: string): string[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('event: '))
    .map((line) => line.slice('event: '.length));
}

describe('Anthropic Messages API', () => {
  let claude: MockAnthropic;
  let gpt: MockOpenAi;
  let gw: TestGateway;
  let dir: string;
  let token: string;

  beforeAll(async () => {
    claude = await MockAnthropic.start(ANTHROPIC_SECRET, SERVER_ANTHROPIC_KEY, PROXY_SECRET);
    gpt = await MockOpenAi.start();
    dir = mkdtempSync(join(tmpdir(), 'aisbgw-anthropic-'));
    const configPath = join(dir, 'config.json');
    writeFileSync(
      configPath,
      JSON.stringify({
        services: {
          'chat:openai.com': { kind: 'openai', baseUrl: gpt.baseUrl, models: ['gpt-4o-mini'] },
          'chat:claude-proxy': { kind: 'anthropic', baseUrl: claude.baseUrl, models: [PROXIED_CLAUDE] },
        },
        keys: { [OPERATOR_KEY]: { project: 'ProjectC', role: 'claude' } },
        roles: { claude: { limits: { [`chat:anthropic.com/${CLAUDE}`]: {} } } },
      }),
    );
    gw = await startGateway({ AISBREAKER_CONFIG: configPath, ANTHROPIC_BASE_URL: claude.baseUrl, ANTHROPIC_API_KEY: SERVER_ANTHROPIC_KEY });
    token = await mint(gw.url, {
      requestAuthAndQuotas: {
        serviceSecrets: [
          { serviceId: 'chat:anthropic.com', authSecret: ANTHROPIC_SECRET },
          { serviceId: 'chat:openai.com', authSecret: OPENAI_SECRET },
          { serviceId: 'chat:claude-proxy', authSecret: PROXY_SECRET },
        ],
      },
    });
  });
  afterAll(async () => {
    await gw.close();
    await claude.close();
    await gpt.close();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(() => {
    claude.received.length = 0;
    gpt.received.length = 0;
  });

  describe('to an anthropic service, passed through', () => {
    it('answers messages.create with the token as x-api-key; the bare claude model reaches chat:anthropic.com with the token secret', async () => {
      const message = await anthropic(gw, token).messages.create({ model: CLAUDE, max_tokens: 64, messages: [{ role: 'user', content: 'ping' }] });
      expect(message.content).toEqual([{ type: 'text', text: mockClaudeAnswer('ping') }]);
      expect(message.usage).toMatchObject({ input_tokens: 12, output_tokens: 8 });

      expect(claude.received).toHaveLength(1);
      const received = claude.received[0];
      expect(received?.headers['x-api-key']).toBe(ANTHROPIC_SECRET);
      // the SDK's own version, passed on as it sent it
      expect(received?.headers['anthropic-version']).toMatch(/^\d{4}-\d\d-\d\d$/);
      expect(received?.headers.authorization).toBeUndefined();
      expect(received?.body.model).toBe(CLAUDE);
      expect(JSON.stringify(received?.headers) + received?.text).not.toContain(token);
    });

    it('passes the body through byte for byte, unknown fields, a system message amid the messages and ?beta=true included, with anthropic-beta', async () => {
      const body = {
        model: CLAUDE,
        max_tokens: 64,
        system: [{ type: 'text', text: 'You are Claude Code.', cache_control: { type: 'ephemeral' } }],
        messages: [
          { role: 'user', content: 'first' },
          { role: 'system', content: 'a reminder in the middle' },
          { role: 'user', content: [{ type: 'text', text: 'second' }] },
        ],
        thinking: { type: 'enabled', budget_tokens: 1024 },
        context_management: { edits: [] },
        metadata: { user_id: 'user-1' },
        tools: [{ ...WEATHER_TOOL, defer_loading: true }],
      };
      const text = JSON.stringify(body);
      const res = await fetch(`${gw.url}/v1/messages?beta=true`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'x-api-key': token, 'anthropic-version': '2099-01-01', 'anthropic-beta': 'claude-code-20250219,interleaved-thinking-2025-05-14' },
        body: text,
      });
      expect(res.status).toBe(200);
      const received = claude.received[0];
      expect(received?.text).toBe(text);
      expect(received?.path).toBe('/v1/messages');
      expect(received?.headers['anthropic-beta']).toBe('claude-code-20250219,interleaved-thinking-2025-05-14');
      expect(received?.headers['anthropic-version']).toBe('2099-01-01');
    });

    it('sends anthropic-version 2023-06-01 when the caller names none', async () => {
      const res = await postMessages(gw, { 'x-api-key': token }, { model: CLAUDE, max_tokens: 8, messages: [{ role: 'user', content: 'x' }] });
      expect(res.status).toBe(200);
      expect(claude.received[0]?.headers['anthropic-version']).toBe('2023-06-01');
      expect(claude.received[0]?.headers['anthropic-beta']).toBeUndefined();
    });

    it('sends the beta SDK call (betas, ?beta=true) through', async () => {
      const message = await anthropic(gw, token).beta.messages.create({ model: CLAUDE, max_tokens: 64, betas: ['token-efficient-tools-2025-02-19'], messages: [{ role: 'user', content: 'beta' }] });
      expect(message.content[0]).toMatchObject({ type: 'text', text: mockClaudeAnswer('beta') });
      expect(claude.received[0]?.headers['anthropic-beta']).toBe('token-efficient-tools-2025-02-19');
    });

    it('streams Anthropic events in order through messages.stream', async () => {
      const stream = anthropic(gw, token).messages.stream({ model: CLAUDE, max_tokens: 64, messages: [{ role: 'user', content: 'stream me' }] });
      const seen: string[] = [];
      for await (const event of stream) seen.push(event.type);
      const message = await stream.finalMessage();
      expect(message.content).toEqual([expect.objectContaining({ type: 'text', text: mockClaudeAnswer('stream me') })]);
      expect(message.usage).toMatchObject({ input_tokens: 12, output_tokens: 8 });
      expect(seen[0]).toBe('message_start');
      expect(seen.slice(-2)).toEqual(['message_delta', 'message_stop']);
      expect(seen).toContain('content_block_delta');
    });

    it('calls tools: tool_use comes back, the tool result goes on as sent', async () => {
      const client = anthropic(gw, token);
      const first = await client.messages.create({ model: CLAUDE, max_tokens: 64, tools: [WEATHER_TOOL], messages: [{ role: 'user', content: 'weather in Paris?' }] });
      expect(first.stop_reason).toBe('tool_use');
      const use = first.content.find((block) => block.type === 'tool_use');
      expect(use).toMatchObject({ name: 'get_weather', input: MOCK_TOOL_INPUT });
      const second = await client.messages.create({
        model: CLAUDE,
        max_tokens: 64,
        tools: [WEATHER_TOOL],
        messages: [
          { role: 'user', content: 'weather in Paris?' },
          { role: 'assistant', content: first.content },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: use?.type === 'tool_use' ? use.id : '', content: 'sunny' }] },
        ],
      });
      expect(second.stop_reason).toBe('end_turn');
      expect(second.content[0]).toMatchObject({ text: mockClaudeAnswer('[result sunny]') });
    });

    it('counts tokens through messages.countTokens, without using any of an LLM-token limit', async () => {
      const limited = await mint(gw.url, { requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { tokensPerDay: 1000 } }, serviceSecrets: [{ serviceId: 'chat:anthropic.com', authSecret: ANTHROPIC_SECRET }] } });
      const counted = await anthropic(gw, limited).messages.countTokens({ model: CLAUDE, messages: [{ role: 'user', content: 'count' }] });
      expect(counted.input_tokens).toBe(MOCK_COUNTED_TOKENS);
      expect(claude.received[0]?.path).toBe('/v1/messages/count_tokens');
      expect(await llmTokensUsed(gw.url, limited)).toBe(0);
    });

    it('serves an operator key with the server key (ANTHROPIC_API_KEY), and only the models its role lists', async () => {
      const message = await anthropic(gw, OPERATOR_KEY).messages.create({ model: CLAUDE, max_tokens: 64, messages: [{ role: 'user', content: 'op' }] });
      expect(message.content[0]).toMatchObject({ text: mockClaudeAnswer('op') });
      expect(claude.received[0]?.headers['x-api-key']).toBe(SERVER_ANTHROPIC_KEY);
      const refused = await anthropic(gw, OPERATOR_KEY)
        .messages.create({ model: 'claude-opus-4-1', max_tokens: 64, messages: [{ role: 'user', content: 'op' }] })
        .catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(Anthropic.PermissionDeniedError);
    });

    it("keeps the upstream's 4xx status and message in Anthropic's shape, never the secret", async () => {
      claude.next({ kind: 'fail', status: 400, body: { type: 'error', error: { type: 'invalid_request_error', message: `max_tokens: too large for key ${ANTHROPIC_SECRET}` } } });
      const res = await postMessages(gw, { 'x-api-key': token }, { model: CLAUDE, max_tokens: 1e9, messages: [{ role: 'user', content: 'x' }] });
      expect(res.status).toBe(400);
      const body = (await res.json()) as AnthropicErrorBody;
      expect(body).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', code: 'UPSTREAM_ERROR' } });
      expect(body.error.message).toContain('max_tokens: too large');
      expect(body.error.message).not.toContain(ANTHROPIC_SECRET);
    });

    it('ends a stream broken off by the upstream with an error event; an error event of the upstream passes on', async () => {
      claude.next({ kind: 'drop-mid-stream' });
      const broken = await postMessages(gw, { 'x-api-key': token }, { model: CLAUDE, max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'x' }] });
      expect(broken.status).toBe(200);
      const brokenText = await broken.text();
      expect(eventNames(brokenText).at(-1)).toBe('error');
      expect(brokenText).toContain('"type":"api_error"');

      claude.next({ kind: 'error-event' });
      const overloaded = await postMessages(gw, { 'x-api-key': token }, { model: CLAUDE, max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'x' }] });
      const overloadedText = await overloaded.text();
      expect(eventNames(overloadedText)).toEqual(['message_start', 'error']);
      expect(overloadedText).toContain('overloaded_error');

      // an error event quoting the key sent upstream passes on without it
      claude.next({ kind: 'error-event', message: `Overloaded for key ${ANTHROPIC_SECRET}` });
      const quoting = await (await postMessages(gw, { 'x-api-key': token }, { model: CLAUDE, max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'x' }] })).text();
      expect(quoting).toContain('Overloaded for key [redacted]');
      expect(quoting).not.toContain(ANTHROPIC_SECRET);
    });
  });

  describe('model resolution and configuration', () => {
    it('sends a bare model to the configured service whose models list it, on /v1/messages and /v1/chat/completions alike', async () => {
      await anthropic(gw, token).messages.create({ model: PROXIED_CLAUDE, max_tokens: 8, messages: [{ role: 'user', content: 'x' }] });
      const completion = await openai(gw, token).chat.completions.create({ model: PROXIED_CLAUDE, messages: [{ role: 'user', content: 'y' }] });
      expect(completion.choices[0]?.message.content).toBe(mockClaudeAnswer('y'));
      expect(claude.received.map((r) => r.headers['x-api-key'])).toEqual([PROXY_SECRET, PROXY_SECRET]);
      expect(claude.received.map((r) => r.body.model)).toEqual([PROXIED_CLAUDE, PROXIED_CLAUDE]);
      // a bare model nobody lists: the route family's default
      await openai(gw, token).chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'z' }] });
      expect(gpt.received[0]?.body.model).toBe('gpt-4.1');
    });

    it('refuses ANTHROPIC_BASE_URL that is no http(s) URL, a defaults.messagesService that is no service, and an unknown field of an anthropic service', async () => {
      expect(() => loadConfig({ AISBREAKER_SECRET: 'x'.repeat(40), ANTHROPIC_BASE_URL: 'file:///etc/passwd' })).toThrow(/ANTHROPIC_BASE_URL: "file:\/\/\/etc\/passwd" is not an http\(s\) URL/);
      expect(parseCatalog({ defaults: { messagesService: 'chat:nowhere' } })).toEqual({ problems: ['defaults.messagesService: "chat:nowhere" is not a service of this server'] });
      const unknownField = parseCatalog({ services: { 'chat:c': { kind: 'anthropic', baseUrl: 'https://x.example', auth: 'bearer' } } });
      expect('problems' in unknownField && unknownField.problems.join()).toMatch(/services\.chat:c/);
    });
  });

  describe('errors and limits in Anthropic shape', () => {
    it('refuses a missing, a bad and an ambiguous credential with authentication_error; never from the query string', async () => {
      const missing = await postMessages(gw, {}, { model: CLAUDE, max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }, `/v1/messages?x-api-key=${token}`);
      expect(missing.status).toBe(401);
      expect(((await missing.json()) as AnthropicErrorBody).error).toMatchObject({ type: 'authentication_error', code: 'MISSING_API_KEY' });
      const bad = await anthropic(gw, 'aisbreaker_garbage').messages.create({ model: CLAUDE, max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }).catch((err: unknown) => err);
      expect(bad).toBeInstanceOf(Anthropic.AuthenticationError);
      expect((bad as InstanceType<typeof Anthropic.AuthenticationError>).error).toMatchObject({ type: 'error', error: { type: 'authentication_error', code: 'INVALID_API_KEY' } });
      const ambiguous = await postMessages(gw, { 'x-api-key': token, Authorization: 'Bearer aisbreaker_other' }, { model: CLAUDE, max_tokens: 8, messages: [{ role: 'user', content: 'x' }] });
      expect(ambiguous.status).toBe(401);
      expect(((await ambiguous.json()) as AnthropicErrorBody).error.message).toBe('Authorization, Api-Key and x-api-key headers name different credentials');
      expect(claude.received).toHaveLength(0);
    });

    it('accepts the token as Authorization: Bearer too (Claude Code with ANTHROPIC_AUTH_TOKEN)', async () => {
      const message = await new Anthropic({ baseURL: gw.url, authToken: token, apiKey: null, maxRetries: 0 }).messages.create({ model: CLAUDE, max_tokens: 8, messages: [{ role: 'user', content: 'bearer' }] });
      expect(message.content[0]).toMatchObject({ text: mockClaudeAnswer('bearer') });
    });

    it('names the field of a bad request: 400 invalid_request_error', async () => {
      const cases: [unknown, string][] = [
        [{ max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }, 'model'],
        [{ model: CLAUDE, max_tokens: 8 }, 'messages'],
        [{ model: CLAUDE, max_tokens: 8, messages: [] }, 'messages'],
        [{ model: CLAUDE, max_tokens: 8, messages: [{ role: 'user', content: 'x' }], stream: 'yes' }, 'stream'],
        [{ model: CLAUDE, MODEL: 'chat:openai.com/gpt-4o', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }, 'MODEL'],
      ];
      for (const [body, field] of cases) {
        const res = await postMessages(gw, { 'x-api-key': token }, body);
        expect(res.status).toBe(400);
        const error = ((await res.json()) as AnthropicErrorBody).error;
        expect(error).toMatchObject({ type: 'invalid_request_error', code: 'INVALID_REQUEST', details: { field } });
      }
      const malformed = await fetch(`${gw.url}/v1/messages`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'x-api-key': token }, body: '{"model":' });
      expect(((await malformed.json()) as AnthropicErrorBody).error).toMatchObject({ type: 'invalid_request_error', message: '(body): malformed JSON' });
      const unknown = await postMessages(gw, { 'x-api-key': token }, { model: 'chat:nowhere/x', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] });
      expect(unknown.status).toBe(404);
      expect(((await unknown.json()) as AnthropicErrorBody).error).toMatchObject({ type: 'not_found_error', code: 'UNKNOWN_SERVICE' });
      expect(claude.received).toHaveLength(0);
    });

    it('bounds the body: over 4 MB 413 request_too_large, nested past 128 levels 400, both before the upstream', async () => {
      const big = await postMessages(gw, { 'x-api-key': token }, { model: CLAUDE, max_tokens: 8, messages: [{ role: 'user', content: 'x'.repeat(4 * 1024 * 1024) }] });
      expect(big.status).toBe(413);
      expect(((await big.json()) as AnthropicErrorBody).error).toMatchObject({ type: 'request_too_large', code: 'PAYLOAD_TOO_LARGE' });
      const deep = await fetch(`${gw.url}/v1/messages`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'x-api-key': token }, body: `{"model":"${CLAUDE}","metadata":${'['.repeat(200)}${']'.repeat(200)}}` });
      expect(deep.status).toBe(400);
      expect(((await deep.json()) as AnthropicErrorBody).error).toMatchObject({ type: 'invalid_request_error', details: { field: '(body)' } });
      expect(claude.received).toHaveLength(0);
    });

    it('carries anthropic-ratelimit-* headers; past the limit 429 rate_limit_error with retry-after', async () => {
      const limited = await mint(gw.url, { requestAuthAndQuotas: { requestQuotas: { perClientRequestLimits: { requestsPerMinute: 2 } }, serviceSecrets: [{ serviceId: 'chat:anthropic.com', authSecret: ANTHROPIC_SECRET }] } });
      const ask = (): Promise<Response> => postMessages(gw, { 'x-api-key': limited }, { model: CLAUDE, max_tokens: 8, messages: [{ role: 'user', content: 'x' }] });
      const first = await ask();
      expect(first.status).toBe(200);
      expect(first.headers.get('anthropic-ratelimit-requests-limit')).toBe('2');
      expect(first.headers.get('anthropic-ratelimit-requests-remaining')).toBe('1');
      const reset = first.headers.get('anthropic-ratelimit-requests-reset') ?? '';
      expect(reset).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      expect(Date.parse(reset)).toBeGreaterThan(Date.now());
      expect(first.headers.get('x-ratelimit-limit-requests')).toBe('2');
      await ask();
      const third = await ask();
      expect(third.status).toBe(429);
      expect(Number(third.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(third.headers.get('anthropic-ratelimit-requests-remaining')).toBe('0');
      expect(((await third.json()) as AnthropicErrorBody).error).toMatchObject({ type: 'rate_limit_error', code: 'RATE_LIMITED', details: { scope: 'client', window: 'minute' } });
      expect(claude.received).toHaveLength(2);
    });

    it('charges a stream the caller leaves early what message_start reported (the prompt was billed)', async () => {
      const limited = await mint(gw.url, { requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { tokensPerDay: 1000 } }, serviceSecrets: [{ serviceId: 'chat:anthropic.com', authSecret: ANTHROPIC_SECRET }] } });
      const used = (): Promise<number> => llmTokensUsed(gw.url, limited);
      claude.eventDelayMs = 200;
      try {
        const controller = new AbortController();
        const res = await fetch(`${gw.url}/v1/messages`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'x-api-key': limited }, body: JSON.stringify({ model: CLAUDE, max_tokens: 8, stream: true, messages: [{ role: 'user', content: 'one two three four five six' }] }), signal: controller.signal });
        await res.body?.getReader().read();
        controller.abort();
      } finally {
        claude.eventDelayMs = 0;
      }
      // message_start's usage: 12 input + 3 cache read + 1 output
      await within(3000, async () => (await used()) > 0);
      expect(await used()).toBe(16);
    });

    it('counts every usage field (cache reads too) against LLM-token limits, JSON and streamed', async () => {
      const limited = await mint(gw.url, { requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { tokensPerMinute: 40 } }, serviceSecrets: [{ serviceId: 'chat:anthropic.com', authSecret: ANTHROPIC_SECRET }] } });
      const ask = (stream: boolean): Promise<Response> => postMessages(gw, { 'x-api-key': limited }, { model: CLAUDE, max_tokens: 8, stream, messages: [{ role: 'user', content: 'x' }] });
      const used = (): Promise<number> => llmTokensUsed(gw.url, limited);
      const first = await ask(true);
      expect(first.headers.get('anthropic-ratelimit-tokens-limit')).toBe('40');
      await first.text();
      expect(await used()).toBe(MOCK_ANTHROPIC_TOTAL);
      await (await ask(false)).text();
      expect(await used()).toBe(2 * MOCK_ANTHROPIC_TOTAL);
      const third = await ask(false);
      expect(third.status).toBe(429);
      expect(((await third.json()) as AnthropicErrorBody).error).toMatchObject({ type: 'rate_limit_error', details: { unit: 'tokens', limit: 40 } });
    });
  });

  describe('to an openai service, translated to a chat completion', () => {
    const GPT = 'chat:openai.com/gpt-4o-mini';

    it('sends system, messages and images as chat messages and answers a Message (Claude Code with --model chat:openai.com/...)', async () => {
      const message = await anthropic(gw, token).messages.create({
        model: GPT,
        max_tokens: 100,
        system: [{ type: 'text', text: 'Be brief.' }],
        stop_sequences: ['END'],
        messages: [
          { role: 'user', content: 'hello' },
          { role: 'assistant', content: 'hi' },
          { role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } }, { type: 'text', text: 'what is this?' }] },
        ],
      });
      expect(message).toMatchObject({ type: 'message', role: 'assistant', model: GPT, stop_reason: 'end_turn', usage: { input_tokens: MOCK_USAGE.prompt_tokens, output_tokens: MOCK_USAGE.completion_tokens } });
      expect(message.content[0]).toMatchObject({ type: 'text', text: mockAnswer(JSON.stringify([{ type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } }, { type: 'text', text: 'what is this?' }])) });
      const sent = gpt.received[0];
      expect(sent?.path).toBe('/v1/chat/completions');
      expect(sent?.headers.authorization).toBe(`Bearer ${OPENAI_SECRET}`);
      expect(sent?.body).toEqual({
        model: 'gpt-4o-mini',
        max_tokens: 100,
        stop: ['END'],
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'hello' },
          { role: 'assistant', content: 'hi' },
          { role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } }, { type: 'text', text: 'what is this?' }] },
        ],
      });
    });

    it('streams the chat chunks as Anthropic events, in order, usage at the end', async () => {
      const res = await postMessages(gw, { 'x-api-key': token }, { model: GPT, max_tokens: 50, stream: true, messages: [{ role: 'user', content: 'stream this' }] });
      const text = await res.text();
      const names = eventNames(text);
      expect(names[0]).toBe('message_start');
      expect(names[1]).toBe('content_block_start');
      expect(names.slice(-3)).toEqual(['content_block_stop', 'message_delta', 'message_stop']);
      expect(gpt.received[0]?.body.stream_options).toEqual({ include_usage: true });

      const stream = anthropic(gw, token).messages.stream({ model: GPT, max_tokens: 50, messages: [{ role: 'user', content: 'stream this' }] });
      const message = await stream.finalMessage();
      expect(message.content).toEqual([expect.objectContaining({ type: 'text', text: mockAnswer('stream this') })]);
      expect(message.usage).toMatchObject({ output_tokens: MOCK_USAGE.completion_tokens });
      expect(message.stop_reason).toBe('end_turn');
    });

    it('translates tools both ways: definitions, tool_calls as tool_use (JSON and streamed), tool results as tool messages', async () => {
      const client = anthropic(gw, token);
      gpt.next({ kind: 'tool-call' });
      const first = await client.messages.create({ model: GPT, max_tokens: 50, tools: [WEATHER_TOOL, { type: 'web_search_20250305', name: 'web_search' }], tool_choice: { type: 'any' }, messages: [{ role: 'user', content: 'weather?' }] });
      expect(first.stop_reason).toBe('tool_use');
      expect(first.content).toEqual([{ type: 'tool_use', id: 'call_mock_1', name: 'get_weather', input: MOCK_TOOL_ARGUMENTS }]);
      expect(gpt.received[0]?.body.tools).toEqual([{ type: 'function', function: { name: 'get_weather', description: 'Weather of a city', parameters: WEATHER_TOOL.input_schema } }]);
      expect(gpt.received[0]?.body.tool_choice).toBe('required');

      gpt.next({ kind: 'tool-call' });
      const streamed = await client.messages.stream({ model: GPT, max_tokens: 50, tools: [WEATHER_TOOL], messages: [{ role: 'user', content: 'weather?' }] }).finalMessage();
      expect(streamed.stop_reason).toBe('tool_use');
      expect(streamed.content).toEqual([expect.objectContaining({ type: 'tool_use', id: 'call_mock_1', name: 'get_weather', input: MOCK_TOOL_ARGUMENTS })]);

      await client.messages.create({
        model: GPT,
        max_tokens: 50,
        tools: [WEATHER_TOOL],
        messages: [
          { role: 'user', content: 'weather?' },
          { role: 'assistant', content: [{ type: 'text', text: 'checking' }, { type: 'tool_use', id: 'call_mock_1', name: 'get_weather', input: { city: 'Berlin' } }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'call_mock_1', content: [{ type: 'text', text: '21 C' }] }, { type: 'text', text: 'and tomorrow?' }] },
        ],
      });
      expect(gpt.received[2]?.body.messages).toEqual([
        { role: 'user', content: 'weather?' },
        { role: 'assistant', content: 'checking', tool_calls: [{ id: 'call_mock_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Berlin"}' } }] },
        { role: 'tool', tool_call_id: 'call_mock_1', content: '21 C' },
        { role: 'user', content: 'and tomorrow?' },
      ]);
    });

    it('counts the translated usage against LLM-token limits; refuses count_tokens naming what the service answers', async () => {
      const limited = await mint(gw.url, { requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { tokensPerDay: 1000 } }, serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: OPENAI_SECRET }] } });
      await (await postMessages(gw, { 'x-api-key': limited }, { model: GPT, max_tokens: 8, stream: true, messages: [{ role: 'user', content: 'x' }] })).text();
      expect(await llmTokensUsed(gw.url, limited)).toBe(MOCK_USAGE.total_tokens);

      const count = await postMessages(gw, { 'x-api-key': limited }, { model: GPT, messages: [{ role: 'user', content: 'x' }] }, '/v1/messages/count_tokens');
      expect(count.status).toBe(400);
      const error = ((await count.json()) as AnthropicErrorBody).error;
      expect(error.message).toBe('model: service "chat:openai.com" does not offer POST /v1/messages/count_tokens; it answers POST /v1/chat/completions, POST /v1/messages, POST /api/v1/process, POST /v1/responses, GET /v1/responses/{id}, DELETE /v1/responses/{id}, POST /v1/embeddings, POST /v1/completions');
    });

    it('ends a translated stream the upstream breaks off with an Anthropic error event', async () => {
      gpt.next({ kind: 'drop-mid-stream' });
      const res = await postMessages(gw, { 'x-api-key': token }, { model: GPT, max_tokens: 8, stream: true, messages: [{ role: 'user', content: 'one two three four' }] });
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(eventNames(text)[0]).toBe('message_start');
      expect(eventNames(text).at(-1)).toBe('error');
      expect(eventNames(text)).not.toContain('message_stop');
      expect(text).toContain('"code":"UPSTREAM_ERROR"');
    });

    it('answers /v1/messages from the local services too', async () => {
      const message = await anthropic(gw, token).messages.create({ model: 'chat:echo', max_tokens: 8, messages: [{ role: 'user', content: 'echo me' }] });
      expect(message.content[0]).toMatchObject({ type: 'text' });
      expect(JSON.stringify(message.content)).toContain('echo me');
    });

    it('names the message of a bad block: 400 with its field', async () => {
      const res = await postMessages(gw, { 'x-api-key': token }, { model: GPT, max_tokens: 8, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'file', file_id: 'f' } }] }] });
      expect(res.status).toBe(400);
      expect(((await res.json()) as AnthropicErrorBody).error).toMatchObject({ type: 'invalid_request_error', details: { field: 'messages[0].content[0].source' } });
      const role = await postMessages(gw, { 'x-api-key': token }, { model: GPT, max_tokens: 8, messages: [{ role: 'robot', content: 'x' }] });
      expect(((await role.json()) as AnthropicErrorBody).error).toMatchObject({ details: { field: 'messages[0].role' } });
      expect(gpt.received).toHaveLength(0);
    });
  });

  describe('/v1/chat/completions to an anthropic service, translated to Messages', () => {
    const SONNET = `chat:anthropic.com/${CLAUDE}`;

    it('sends system messages as system, max_tokens defaulted, and answers a chat completion with the usage', async () => {
      const completion = await openai(gw, token).chat.completions.create({
        model: SONNET,
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: [{ type: 'text', text: 'look' }, { type: 'image_url', image_url: { url: 'data:image/jpeg;base64,/9j/4AAQ' } }] },
        ],
        stop: 'END',
        user: 'user-7',
      });
      expect(completion.choices[0]?.message.content).toBe(mockClaudeAnswer('look'));
      expect(completion.choices[0]?.finish_reason).toBe('stop');
      expect(completion.usage).toEqual({ prompt_tokens: 15, completion_tokens: 8, total_tokens: MOCK_ANTHROPIC_TOTAL });
      const sent = claude.received[0];
      expect(sent?.headers['x-api-key']).toBe(ANTHROPIC_SECRET);
      expect(sent?.headers['anthropic-version']).toBe('2023-06-01');
      expect(sent?.body).toEqual({
        model: CLAUDE,
        max_tokens: 4096,
        system: 'Be brief.',
        messages: [{ role: 'user', content: [{ type: 'text', text: 'look' }, { type: 'image', source: { type: 'base64', media_type: 'image/jpeg', data: '/9j/4AAQ' } }] }],
        stop_sequences: ['END'],
        metadata: { user_id: 'user-7' },
      });
    });

    it('streams Anthropic events as chat chunks, with the usage chunk when asked', async () => {
      const stream = await openai(gw, token).chat.completions.create({ model: SONNET, messages: [{ role: 'user', content: 'stream me' }], stream: true, stream_options: { include_usage: true } });
      let text = '';
      let finish: string | null | undefined;
      let usage: number | undefined;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? '';
        finish = chunk.choices[0]?.finish_reason ?? finish;
        usage = chunk.usage?.total_tokens ?? usage;
      }
      expect(text).toBe(mockClaudeAnswer('stream me'));
      expect(finish).toBe('stop');
      expect(usage).toBe(MOCK_ANTHROPIC_TOTAL);
      expect(claude.received[0]?.body.stream).toBe(true);
    });

    it('translates tools: function definitions, tool_use as tool_calls (JSON and streamed), tool messages as tool_result', async () => {
      const client = openai(gw, token);
      const tools = [{ type: 'function' as const, function: { name: 'get_weather', description: 'Weather of a city', parameters: WEATHER_TOOL.input_schema } }];
      const first = await client.chat.completions.create({ model: SONNET, tools, tool_choice: 'required', messages: [{ role: 'user', content: 'weather?' }] });
      expect(first.choices[0]?.finish_reason).toBe('tool_calls');
      expect(first.choices[0]?.message.tool_calls).toEqual([{ id: 'toolu_mock_1', type: 'function', function: { name: 'get_weather', arguments: JSON.stringify(MOCK_TOOL_INPUT) } }]);
      expect(claude.received[0]?.body.tools).toEqual([WEATHER_TOOL]);
      expect(claude.received[0]?.body.tool_choice).toEqual({ type: 'any' });

      const stream = await client.chat.completions.create({ model: SONNET, tools, messages: [{ role: 'user', content: 'weather?' }], stream: true });
      let args = '';
      let name: string | undefined;
      let finish: string | null | undefined;
      for await (const chunk of stream) {
        const call = chunk.choices[0]?.delta.tool_calls?.[0];
        name ??= call?.function?.name;
        args += call?.function?.arguments ?? '';
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      expect({ name, args: JSON.parse(args) as unknown, finish }).toEqual({ name: 'get_weather', args: MOCK_TOOL_INPUT, finish: 'tool_calls' });

      const answer = await client.chat.completions.create({
        model: SONNET,
        tools,
        messages: [
          { role: 'user', content: 'weather?' },
          { role: 'assistant', content: null, tool_calls: [{ id: 'toolu_mock_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
          { role: 'tool', tool_call_id: 'toolu_mock_1', content: 'sunny' },
        ],
      });
      expect(answer.choices[0]?.message.content).toBe(mockClaudeAnswer('[result sunny]'));
      expect(claude.received[2]?.body.messages).toEqual([
        { role: 'user', content: [{ type: 'text', text: 'weather?' }] },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_mock_1', name: 'get_weather', input: { city: 'Paris' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_mock_1', content: 'sunny' }] },
      ]);
    });

    it('fails a stream whose upstream reports an error event with a chunk carrying the error', async () => {
      claude.next({ kind: 'error-event' });
      const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` }, body: JSON.stringify({ model: SONNET, stream: true, messages: [{ role: 'user', content: 'x' }] }) });
      const text = await res.text();
      expect(text).toContain('"code":"UPSTREAM_ERROR"');
      expect(text).toContain('Overloaded');
      expect(text).not.toContain('[DONE]');
    });

    it('answers /api/v1/process from an anthropic service', async () => {
      const res = await fetch(`${gw.url}/api/v1/process`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
        body: JSON.stringify({ service: { serviceId: SONNET }, request: { inputs: [{ text: { role: 'user', content: 'process me' } }] } }),
      });
      const body = (await res.json()) as { outputs: { text: { content: string } }[] };
      expect(body.outputs[0]?.text.content).toBe(mockClaudeAnswer('process me'));
    });
  });

  it('counts requests and LLM tokens in the metrics by route and service, and never logs a secret or token', async () => {
    await anthropic(gw, OPERATOR_KEY).messages.create({ model: CLAUDE, max_tokens: 8, messages: [{ role: 'user', content: 'metered' }] });
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/route="\/v1\/messages"[^\n]*service="chat:anthropic\.com"|service="chat:anthropic\.com"[^\n]*route="\/v1\/messages"/);
    expect(metrics).toMatch(/route="\/v1\/messages\/count_tokens"/);
    const tokens = /aisbgw_llm_tokens_total\{project="ProjectC",service="chat:anthropic\.com"\} (\d+)/.exec(metrics)?.[1];
    // this call's and the earlier operator-key call's
    expect(Number(tokens)).toBe(2 * MOCK_ANTHROPIC_TOTAL);
    const logs = gw.logs.join('\n');
    for (const secret of [ANTHROPIC_SECRET, OPENAI_SECRET, SERVER_ANTHROPIC_KEY, OPERATOR_KEY, PROXY_SECRET, token]) expect(logs).not.toContain(secret);
  });
});
