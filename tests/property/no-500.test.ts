import { deflateSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mint, startGateway, type TestGateway } from '../helpers/gateway.js';
import { rawHttp, requestText, type RawResponse } from '../helpers/hostile.js';

/**
 * Property: no generated request yields a 500. Bodies (arbitrary JSON, arbitrary text, near-valid
 * bodies with arbitrary values in every field, prototype keys), content types and header values
 * (Authorization, Api-Key, X-Request-Id as arbitrary bytes) go to every endpoint that reads them.
 * Refusals carry the envelope; nothing is logged as an unhandled error.
 */

const ENDPOINTS = [
  ['POST', '/api/v1/oauth/token'],
  ['POST', '/api/v1/process'],
  ['POST', '/v1/chat/completions'],
  ['POST', '/v1/messages'],
  ['POST', '/v1/messages/count_tokens'],
  ['POST', '/v1/responses'],
  ['GET', '/v1/responses/resp_1'],
  ['POST', '/v1/embeddings'],
  ['POST', '/v1/completions'],
  ['GET', '/api/v1/oauth/tokeninfo'],
  ['POST', '/api/v1/oauth/revoke'],
  ['POST', '/api/v1/oauth/introspect'],
  ['GET', '/v1/models'],
] as const;

const KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', 'service', 'request', 'model', 'messages', 'stream', 'stream_options', 'requestAuthAndQuotas', 'token', 'jti', 'type', 'text', 'source', 'input', 'tool_use_id', 'content', 'system', 'tools'];

/** any JSON value, with prototype-ish keys mixed in */
const json: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.jsonValue({ maxDepth: 2 }),
    fc.dictionary(fc.oneof(fc.constantFrom(...KEYS), fc.string({ maxLength: 8 })), tie('value'), { maxKeys: 4 }),
    fc.array(tie('value'), { maxLength: 4 }),
  ),
})).value;

const text = fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), fc.constantFrom('\ud800', '\u0000', '', 'chat:echo', 'chat:dummy/x', 'chat:openai.com/gpt-4o', 'aisbreaker:network', '1h', '-1h', '1e999d'));
const anyValue = fc.oneof(json, text, fc.integer(), fc.double(), fc.boolean(), fc.constant(null));

const limits = fc.dictionary(fc.constantFrom('requestsPerMinute', 'requestsPerHour', 'requestsPerDay', 'tokensPerMinute', 'tokensPerDay', 'requestsPerWeek', '__proto__'), anyValue, { maxKeys: 3 });
const nearMint = fc.record(
  {
    requestAuthAndQuotas: fc.oneof(
      anyValue,
      fc.record(
        {
          requestQuotas: fc.oneof(anyValue, fc.record({ perClientRequestLimits: fc.oneof(limits, anyValue), globalRequestLimits: limits }, { requiredKeys: [] })),
          serviceSecrets: fc.oneof(anyValue, fc.array(fc.record({ serviceId: fc.oneof(text, anyValue), authSecret: fc.oneof(text, anyValue) }, { requiredKeys: [] }), { maxLength: 3 })),
        },
        { requiredKeys: [] },
      ),
    ),
    expirationTimeSpan: fc.oneof(text, anyValue),
    clientSecret: fc.oneof(text, anyValue),
    grant_type: anyValue,
  },
  { requiredKeys: [] },
);
const nearProcess = fc.record(
  {
    service: fc.oneof(anyValue, fc.record({ serviceId: fc.oneof(text, anyValue), url: anyValue }, { requiredKeys: [] })),
    request: fc.oneof(
      anyValue,
      fc.record(
        {
          inputs: fc.oneof(anyValue, fc.array(fc.record({ text: fc.oneof(anyValue, fc.record({ role: fc.oneof(text, anyValue), content: fc.oneof(text, anyValue) }, { requiredKeys: [] })) }), { maxLength: 3 })),
          conversationState: fc.oneof(text, anyValue, fc.base64String({ maxLength: 40 })),
          stream: fc.oneof(fc.boolean(), anyValue),
        },
        { requiredKeys: [] },
      ),
    ),
  },
  { requiredKeys: [] },
);
const nearChat = fc.record(
  {
    model: fc.oneof(text, anyValue),
    messages: fc.oneof(anyValue, fc.array(fc.record({ role: fc.oneof(fc.constantFrom('user', 'system', 'assistant', 'tool'), anyValue), content: fc.oneof(text, anyValue) }, { requiredKeys: [] }), { maxLength: 3 })),
    stream: fc.oneof(fc.boolean(), anyValue),
    stream_options: anyValue,
    token: fc.oneof(text, anyValue),
    jti: fc.oneof(text, anyValue),
  },
  { requiredKeys: [] },
);

/** Messages bodies with arbitrary blocks, for the translation to chat completions (chat:echo needs no secret) */
const block = fc.oneof(
  anyValue,
  fc.record(
    {
      type: fc.oneof(fc.constantFrom('text', 'image', 'tool_use', 'tool_result', 'thinking', 'document'), anyValue),
      text: anyValue,
      source: fc.oneof(anyValue, fc.record({ type: fc.oneof(fc.constantFrom('base64', 'url'), anyValue), media_type: anyValue, data: anyValue, url: anyValue }, { requiredKeys: [] })),
      id: anyValue,
      name: anyValue,
      input: anyValue,
      tool_use_id: anyValue,
      content: anyValue,
      is_error: anyValue,
    },
    { requiredKeys: [] },
  ),
);
const nearMessages = fc.record(
  {
    model: fc.oneof(fc.constantFrom('chat:echo', 'chat:dummy/x', 'claude-sonnet-4-5'), text, anyValue),
    max_tokens: anyValue,
    system: fc.oneof(text, anyValue, fc.array(block, { maxLength: 2 })),
    messages: fc.oneof(anyValue, fc.array(fc.record({ role: fc.oneof(fc.constantFrom('user', 'assistant', 'system'), anyValue), content: fc.oneof(text, anyValue, fc.array(block, { maxLength: 3 })) }, { requiredKeys: [] }), { maxLength: 3 })),
    tools: fc.oneof(anyValue, fc.array(fc.record({ name: anyValue, description: anyValue, input_schema: anyValue, type: anyValue }, { requiredKeys: [] }), { maxLength: 2 })),
    tool_choice: anyValue,
    stop_sequences: anyValue,
    stream: fc.oneof(fc.boolean(), anyValue),
  },
  { requiredKeys: [] },
);

const body = fc.oneof(
  nearMint.map((v) => JSON.stringify(v)),
  nearProcess.map((v) => JSON.stringify(v)),
  nearChat.map((v) => JSON.stringify(v)),
  nearMessages.map((v) => JSON.stringify(v)),
  json.map((v) => JSON.stringify(v) ?? ''),
  fc.string({ unit: 'binary', maxLength: 100 }),
  fc.constantFrom('token=abc&jti=x', 'token=&token=a', '{', '[]', 'null', '{"a":1,"a":2}'),
);

const CONTENT_TYPES = ['application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', 'application/json; charset=bogus', 'text/json', '*/*', ''];

/** header-safe bytes: anything but CR, LF and NUL (those are the parser's business: see headers.test.ts) */
const headerValue = fc.string({ unit: fc.integer({ min: 0x01, max: 0xff }).filter((c) => c !== 0x0a && c !== 0x0d).map((c) => String.fromCharCode(c)), maxLength: 60 });

describe('property: no generated request yields a 500', () => {
  let gw: TestGateway;
  let token: string;

  beforeAll(async () => {
    // a dead loopback upstream: no request may leave the machine
    gw = await startGateway({ OPENAI_BASE_URL: 'http://127.0.0.1:9/v1', ANTHROPIC_BASE_URL: 'http://127.0.0.1:9', AISBREAKER_ADMIN_KEY: 'admin-key-for-no-500-tests-0123456789' });
    token = await mint(gw.url, { requestAuthAndQuotas: {} }, { Authorization: 'Bearer admin-key-for-no-500-tests-0123456789' });
  });
  afterAll(() => gw.close());

  function judge(res: RawResponse, label: string): void {
    expect({ label, status: res.status, body: res.body.slice(0, 200) }).not.toMatchObject({ status: 500 });
    expect(res.status).toBeGreaterThanOrEqual(200);
    // upstream statuses only where an upstream was involved
    if (res.status >= 500) expect(res.body).toMatch(/UPSTREAM_|QUOTA_BACKEND/);
    if (res.status >= 400 && /json/.test(res.headers['content-type'] ?? '')) {
      const parsed = JSON.parse(res.body) as { success?: boolean; type?: string; error?: { code?: unknown; message?: unknown } };
      // the Anthropic routes answer in Anthropic's shape, ours inside `error` alike
      if (label.includes('/v1/messages')) expect(parsed.type).toBe('error');
      else expect(parsed.success).toBe(false);
      expect(typeof parsed.error?.code).toBe('string');
      expect(typeof parsed.error?.message).toBe('string');
    }
  }

  it('generated bodies and content types, with and without a good token (250 requests)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ENDPOINTS), body, fc.constantFrom(...CONTENT_TYPES), fc.constantFrom('token', 'admin', 'none'), async ([method, path], text, type, who) => {
        const headers = type ? [`Content-Type: ${type}`] : [];
        if (who === 'token') headers.push(`Authorization: Bearer ${token}`);
        if (who === 'admin') headers.push('Authorization: Bearer admin-key-for-no-500-tests-0123456789');
        const res = await rawHttp(gw.port, requestText(method, path, headers, method === 'GET' ? '' : text));
        judge(res, `${method} ${path} ${type} ${who}: ${text.slice(0, 80)}`);
      }),
      { numRuns: 250 },
    );
  });

  it('generated Messages bodies through the translation to chat completions and back, JSON and streamed, with a good token (150 requests)', async () => {
    await fc.assert(
      fc.asyncProperty(nearMessages, fc.constantFrom('chat:echo', 'chat:dummy/x'), fc.boolean(), async (fields, model, stream) => {
        const res = await rawHttp(gw.port, requestText('POST', '/v1/messages', ['Content-Type: application/json', `x-api-key: ${token}`], JSON.stringify({ ...fields, model, stream })));
        judge(res, `/v1/messages ${model} ${stream}: ${JSON.stringify(fields).slice(0, 120)}`);
        // a translation either answers in Anthropic's terms or refuses with a 400 naming the field
        if (res.status !== 200) expect(res.status).toBe(400);
      }),
      { numRuns: 150 },
    );
  });

  it('generated header values in Authorization, Api-Key, x-api-key, X-Request-Id, Content-Type and Content-Encoding (200 requests)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ENDPOINTS),
        fc.record(
          {
            authorization: headerValue,
            apiKey: headerValue,
            xApiKey: headerValue,
            requestId: headerValue,
            contentType: headerValue,
            contentEncoding: fc.oneof(fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'compress', 'gzip, gzip'), headerValue),
          },
          { requiredKeys: [] },
        ),
        fc.boolean(),
        async ([method, path], h, bearerPrefix) => {
          const headers: string[] = [];
          if (h.authorization !== undefined) headers.push(`Authorization: ${bearerPrefix ? 'Bearer ' : ''}${h.authorization}`);
          if (h.apiKey !== undefined) headers.push(`Api-Key: ${h.apiKey}`);
          if (h.xApiKey !== undefined) headers.push(`x-api-key: ${h.xApiKey}`);
          if (h.requestId !== undefined) headers.push(`X-Request-Id: ${h.requestId}`);
          headers.push(`Content-Type: ${h.contentType ?? 'application/json'}`);
          if (h.contentEncoding !== undefined) headers.push(`Content-Encoding: ${h.contentEncoding}`);
          const res = await rawHttp(gw.port, requestText(method, path, headers, method === 'GET' ? '' : '{"requestAuthAndQuotas":{}}'));
          // Node's parser may refuse control characters itself (400); the gateway must never 500
          judge(res, `${method} ${path} ${JSON.stringify(h)}`);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('generated body framing: content type x content encoding x (maybe compressed, maybe truncated) body, with a good token (200 requests)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ENDPOINTS.filter(([method]) => method === 'POST')),
        fc.constantFrom(...CONTENT_TYPES.slice(0, 5)),
        fc.constantFrom('gzip', 'x-gzip', 'deflate', 'br', 'identity', 'compress', 'gzip, deflate', 'GZIP', ''),
        body,
        fc.constantFrom('plain', 'gzip', 'deflate', 'truncated-gzip'),
        async ([method, path], type, encoding, text, packing) => {
          let bytes: Buffer = Buffer.from(text, 'utf8');
          if (packing === 'gzip') bytes = gzipSync(bytes);
          if (packing === 'deflate') bytes = deflateSync(bytes);
          if (packing === 'truncated-gzip') bytes = gzipSync(bytes).subarray(0, 12);
          const headers = [`Content-Type: ${type}`, `Authorization: Bearer ${token}`];
          if (encoding) headers.push(`Content-Encoding: ${encoding}`);
          const res = await rawHttp(gw.port, requestText(method, path, headers, bytes));
          judge(res, `${path} ${type} ${encoding} ${packing}`);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('logged no unhandled error, and still serves', async () => {
    expect(gw.logs.filter((l) => l.includes('"level":50'))).toEqual([]);
    const res = await rawHttp(gw.port, requestText('GET', '/api/v1/oauth/tokeninfo', [`Authorization: Bearer ${token}`]));
    expect(res.status).toBe(200);
  });
});
