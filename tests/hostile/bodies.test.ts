import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Keyring } from '../../src/token/keyring.js';
import { openToken } from '../../src/token/codec.js';
import { mint, startGateway, TEST_SECRET, type TestGateway } from '../helpers/gateway.js';
import { expectError, findLeaks, rawHttp, requestText, type RawResponse } from '../helpers/hostile.js';
import { MockOpenAi } from '../helpers/mock-openai.js';

/**
 * Hostile bodies on every endpoint that takes one: wrong content types and encodings, malformed
 * and deeply nested JSON, huge arrays and strings, prototype-pollution keys, unicode edge cases,
 * numbers as strings and duplicated keys. Each case names the status and code it must get.
 */

type Endpoint = 'mint' | 'process' | 'chat';
/** [status, code]; code undefined: a success */
type Expected = [number, string | undefined];

interface BodyCase {
  name: string;
  body: string | Buffer;
  /** a different body per endpoint, where the case is about a field of each */
  bodies?: Partial<Record<Endpoint, string | Buffer>>;
  /** header lines; default Content-Type: application/json */
  headers?: string[];
  mint?: Expected;
  process?: Expected;
  /** POST /v1/chat/completions */
  chat?: Expected;
  /** the field the 400 must name: request.* and service.* on process, the mint fields on mint, others on both */
  field?: string;
  /** more checks on the response */
  check?: (endpoint: Endpoint, res: RawResponse) => void | Promise<void>;
}

const JSON_TYPE = ['Content-Type: application/json'];
const goodMint = JSON.stringify({ requestAuthAndQuotas: {} });
const process = (content: unknown, extra: Record<string, unknown> = {}, serviceId = 'chat:echo'): string =>
  JSON.stringify({ service: { serviceId }, request: { inputs: [{ text: { role: 'user', content } }], ...extra } });
const goodProcess = process('hi');
const chat = (content: unknown, extra: Record<string, unknown> = {}, model = 'chat:echo/any'): string => JSON.stringify({ model, messages: [{ role: 'user', content }], ...extra });
const goodChat = chat('hi');
/** the same outcome on every endpoint where a case is about the bytes, not the fields */
const both = (status: number, code: string | undefined): Pick<BodyCase, 'mint' | 'process' | 'chat'> => ({ mint: [status, code], process: [status, code], chat: [status, code] });

function fieldApplies(field: string, endpoint: Endpoint): boolean {
  if (/^(request|service)\./.test(field)) return endpoint === 'process';
  if (/^(model|messages|stream)/.test(field)) return endpoint === 'chat';
  if (/^(requestAuthAndQuotas|expirationTimeSpan)/.test(field)) return endpoint === 'mint';
  return true;
}

function nested(depth: number, open: string, close: string, inner = '1'): string {
  return open.repeat(depth) + inner + close.repeat(depth);
}

function echoed(res: RawResponse): string | undefined {
  const json = JSON.parse(res.body) as { outputs?: { text?: { content?: string } }[]; choices?: { message?: { content?: string } }[] };
  return json.outputs?.[0]?.text?.content ?? json.choices?.[0]?.message?.content;
}

const keyring = new Keyring(TEST_SECRET);
async function claimsOf(res: RawResponse): Promise<Awaited<ReturnType<typeof openToken>>['claims']> {
  const token = (JSON.parse(res.body) as { access_token: string }).access_token;
  return (await openToken(token, keyring, Date.now())).claims;
}

const cases: BodyCase[] = [
  // content types and encodings
  { name: 'no Content-Type', body: goodMint, headers: [], ...both(400, 'INVALID_REQUEST'), field: 'Content-Type' },
  { name: 'Content-Type: text/html', body: goodMint, headers: ['Content-Type: text/html'], ...both(400, 'INVALID_REQUEST'), field: 'Content-Type' },
  { name: 'Content-Type: form-urlencoded', body: 'requestAuthAndQuotas=x', headers: ['Content-Type: application/x-www-form-urlencoded'], ...both(400, 'INVALID_REQUEST'), field: 'Content-Type' },
  { name: 'Content-Type: multipart/form-data', body: '--b\r\n\r\nx\r\n--b--', headers: ['Content-Type: multipart/form-data; boundary=b'], ...both(400, 'INVALID_REQUEST'), field: 'Content-Type' },
  { name: 'Content-Type: garbage', body: goodMint, headers: ['Content-Type: ;;;/==='], ...both(400, 'INVALID_REQUEST'), field: 'Content-Type' },
  { name: 'text/plain: refused for minting, accepted by the AIsBreaker API', body: goodProcess, headers: ['Content-Type: text/plain'], mint: [400, 'INVALID_REQUEST'], process: [200, undefined], chat: [400, 'INVALID_REQUEST'] },
  { name: 'charset=latin1', body: goodMint, headers: ['Content-Type: application/json; charset=latin1'], ...both(400, 'INVALID_REQUEST'), field: 'Content-Type' },
  { name: 'charset=utf-16 on UTF-8 bytes', body: goodMint, headers: ['Content-Type: application/json; charset=utf-16'], ...both(400, 'INVALID_REQUEST') },
  { name: 'Content-Encoding: compress (unsupported)', body: goodMint, headers: [...JSON_TYPE, 'Content-Encoding: compress'], ...both(400, 'INVALID_REQUEST'), field: 'Content-Type' },
  { name: 'Content-Encoding: gzip, not gzip', body: 'this is not gzip', headers: [...JSON_TYPE, 'Content-Encoding: gzip'], ...both(400, 'INVALID_REQUEST') },
  {
    name: 'Content-Encoding: gzip bomb (20 MB of spaces)',
    body: gzipSync(Buffer.alloc(20_000_000, 0x20)),
    headers: [...JSON_TYPE, 'Content-Encoding: gzip'],
    ...both(413, 'PAYLOAD_TOO_LARGE'),
  },
  { name: 'Content-Encoding: gzip, a good body', body: gzipSync(goodProcess), bodies: { chat: gzipSync(goodChat) }, headers: [...JSON_TYPE, 'Content-Encoding: gzip'], mint: [400, 'INVALID_REQUEST'], process: [200, undefined], chat: [200, undefined] },

  // malformed and non-object JSON
  { name: 'malformed JSON', body: '{"requestAuthAndQuotas":', ...both(400, 'INVALID_REQUEST'), field: '(body)' },
  { name: 'empty body', body: '', ...both(400, 'INVALID_REQUEST') },
  { name: 'JSON null', body: 'null', ...both(400, 'INVALID_REQUEST') },
  { name: 'JSON array', body: '[]', ...both(400, 'INVALID_REQUEST') },
  { name: 'JSON string', body: '"x"', ...both(400, 'INVALID_REQUEST') },
  { name: 'JSON number', body: '42', ...both(400, 'INVALID_REQUEST') },
  { name: 'a UTF-8 BOM before the JSON', body: '\ufeff' + goodProcess, bodies: { chat: '\ufeff' + goodChat }, mint: [400, 'INVALID_REQUEST'], process: [200, undefined], chat: [200, undefined] },
  { name: 'trailing garbage after the JSON', body: goodMint + 'x', ...both(400, 'INVALID_REQUEST') },

  // nesting (at most 128 levels, refused before parsing: details.field "(body)") and size
  { name: 'nesting 30k deep (arrays) at the top', body: nested(30_000, '[', ']'), ...both(400, 'INVALID_REQUEST') },
  { name: 'nesting 20k deep (objects) in an unknown field', body: `{"x":${nested(20_000, '{"a":', '}')},"service":{"serviceId":"chat:echo"},"request":{"inputs":[]}}`, mint: [413, 'PAYLOAD_TOO_LARGE'], process: [400, 'INVALID_REQUEST'], field: '(body)' },
  { name: 'nesting 5k deep (objects) in an unknown field of a mint body', body: `{"x":${nested(5_000, '{"a":', '}')},"requestAuthAndQuotas":{}}`, ...both(400, 'INVALID_REQUEST'), field: '(body)' },
  { name: 'nesting 30k deep where inputs belong', body: `{"service":{"serviceId":"chat:echo"},"request":{"inputs":${nested(30_000, '[', ']')}}}`, mint: [400, 'INVALID_REQUEST'], process: [400, 'INVALID_REQUEST'], field: undefined },
  { name: 'nesting 30k deep where requestQuotas belong', body: `{"requestAuthAndQuotas":{"requestQuotas":${nested(30_000, '{"a":', '}')}}}`, mint: [413, 'PAYLOAD_TOO_LARGE'], process: [400, 'INVALID_REQUEST'] },
  { name: 'nesting 10k deep where requestQuotas belong', body: `{"requestAuthAndQuotas":{"requestQuotas":${nested(10_000, '[', ']')}}}`, ...both(400, 'INVALID_REQUEST'), field: '(body)' },
  { name: 'an array of 20000 inputs', body: JSON.stringify({ service: { serviceId: 'chat:echo' }, request: { inputs: Array.from({ length: 20_000 }, () => ({})) } }), mint: [400, 'INVALID_REQUEST'], process: [400, 'INVALID_REQUEST'], field: 'request.inputs' },
  {
    name: '1000 service secrets',
    body: JSON.stringify({ requestAuthAndQuotas: { serviceSecrets: Array.from({ length: 1000 }, (_, i) => ({ serviceId: `s${i}`, authSecret: 'x' })) } }),
    mint: [400, 'INVALID_REQUEST'],
    process: [400, 'INVALID_REQUEST'],
  },
  {
    name: '40 service secrets',
    body: JSON.stringify({ requestAuthAndQuotas: { serviceSecrets: Array.from({ length: 40 }, (_, i) => ({ serviceId: `s${i}`, authSecret: 'x' })) } }),
    mint: [400, 'INVALID_REQUEST'],
    process: [400, 'INVALID_REQUEST'],
    field: undefined,
  },
  {
    name: '16 secrets of 2048 chars: the token would exceed 8192 chars',
    body: JSON.stringify({ requestAuthAndQuotas: { serviceSecrets: Array.from({ length: 16 }, (_, i) => ({ serviceId: `s${i}`, authSecret: 'x'.repeat(2048) })) } }),
    mint: [400, 'INVALID_REQUEST'],
    process: [400, 'INVALID_REQUEST'],
  },
  { name: 'an authSecret of 3000 chars', body: JSON.stringify({ requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 's', authSecret: 'x'.repeat(3000) }] } }), mint: [400, 'INVALID_REQUEST'], process: [400, 'INVALID_REQUEST'] },
  { name: 'a content of 600 KB', body: process('y'.repeat(600_000)), mint: [413, 'PAYLOAD_TOO_LARGE'], process: [400, 'INVALID_REQUEST'] },
  { name: 'a body of 1.5 MB', body: process('y'.repeat(1_500_000)), mint: [413, 'PAYLOAD_TOO_LARGE'], process: [413, 'PAYLOAD_TOO_LARGE'] },
  { name: 'a body of 5 MB', body: chat('y'.repeat(5_000_000)), ...both(413, 'PAYLOAD_TOO_LARGE') },
  { name: 'a serviceId of 5000 chars', body: process('hi', {}, 's'.repeat(5000)), mint: [400, 'INVALID_REQUEST'], process: [400, 'INVALID_REQUEST'], field: undefined },

  // prototype pollution
  { name: '__proto__ at the top', body: `{"__proto__":{"polluted":"yes","stream":true},${goodProcess.slice(1)}`, mint: [400, 'INVALID_REQUEST'], process: [200, undefined] },
  { name: '__proto__ beside a valid mint', body: `{"__proto__":{"polluted":"yes"},"requestAuthAndQuotas":{}}`, mint: [200, undefined], process: [400, 'INVALID_REQUEST'] },
  {
    name: '__proto__ inside request: must not turn streaming on',
    body: `{"service":{"serviceId":"chat:echo"},"request":{"__proto__":{"stream":true},"inputs":[{"text":{"role":"user","content":"x"}}]}}`,
    mint: [400, 'INVALID_REQUEST'],
    process: [200, undefined],
    check: (endpoint, res) => {
      if (endpoint === 'process') expect(res.headers['content-type']).toMatch(/^application\/json/);
    },
  },
  {
    name: '__proto__ inside a limits object: no hidden limits, no pollution',
    body: '{"requestAuthAndQuotas":{"requestQuotas":{"perClientRequestLimits":{"__proto__":{"requestsPerMinute":1}}}}}',
    mint: [400, 'INVALID_REQUEST'],
    process: [400, 'INVALID_REQUEST'],
  },
  { name: '__proto__ inside requestAuthAndQuotas', body: '{"requestAuthAndQuotas":{"__proto__":{"polluted":"yes"}}}', mint: [400, 'INVALID_REQUEST'], process: [400, 'INVALID_REQUEST'] },
  { name: 'constructor.prototype at the top', body: `{"constructor":{"prototype":{"polluted":"yes"}},"requestAuthAndQuotas":{}}`, mint: [200, undefined], process: [400, 'INVALID_REQUEST'] },
  {
    name: 'constructor.prototype inside a text input',
    body: `{"service":{"serviceId":"chat:echo"},"request":{"inputs":[{"text":{"role":"user","content":"x","constructor":{"prototype":{"polluted":"yes"}}}}]}}`,
    mint: [400, 'INVALID_REQUEST'],
    process: [200, undefined],
  },
  { name: 'serviceId "__proto__"', body: process('hi', {}, '__proto__'), mint: [400, 'INVALID_REQUEST'], process: [404, 'UNKNOWN_SERVICE'] },
  { name: 'serviceId "constructor"', body: process('hi', {}, 'constructor'), mint: [400, 'INVALID_REQUEST'], process: [404, 'UNKNOWN_SERVICE'] },
  { name: 'serviceId "toString"', body: process('hi', {}, 'toString'), mint: [400, 'INVALID_REQUEST'], process: [404, 'UNKNOWN_SERVICE'] },

  // unicode
  ...(
    [
      ['a lone high surrogate', '\ud800'],
      ['a lone low surrogate', 'a\udfffb'],
      ['NUL', 'a\u0000b'],
      ['RTL override and isolates', '\u202eevil\u2066x\u2069'],
      ['line and paragraph separators', 'a\u2028b\u2029c'],
      ['an astral emoji and a ZWJ sequence', '👩‍👩‍👧‍👦 𝕏'],
      ['U+FFFF and U+FFFE', '\uffff\ufffe'],
    ] as const
  ).map(
    ([what, text]): BodyCase => ({
      name: `unicode: ${what} round-trips through echo and a minted secret`,
      body: '',
      bodies: {
        process: process(text),
        mint: JSON.stringify({ requestAuthAndQuotas: { serviceSecrets: [{ serviceId: `svc${text}`, authSecret: `secret${text}` }] } }),
      },
      mint: [200, undefined],
      process: [200, undefined],
      check: async (endpoint, res) => {
        if (endpoint === 'process') expect(echoed(res)).toBe(text);
        else expect((await claimsOf(res)).serviceSecrets).toEqual([{ serviceId: `svc${text}`, authSecret: `secret${text}` }]);
      },
    }),
  ),
  { name: 'invalid UTF-8 bytes inside a string', body: Buffer.concat([Buffer.from(goodProcess.slice(0, -6)), Buffer.from([0xff, 0xfe, 0xc0, 0x80]), Buffer.from('"}}]}}')]), mint: [400, 'INVALID_REQUEST'], process: [200, undefined] },
  { name: 'serviceId with RTL override', body: process('hi', {}, 'chat:\u202eohce'), mint: [400, 'INVALID_REQUEST'], process: [404, 'UNKNOWN_SERVICE'] },
  { name: 'serviceId with NUL', body: process('hi', {}, 'chat:echo\u0000'), mint: [400, 'INVALID_REQUEST'], process: [404, 'UNKNOWN_SERVICE'] },

  // numbers as strings and other wrong types
  { name: 'requestsPerMinute as a string', body: '{"requestAuthAndQuotas":{"requestQuotas":{"perClientRequestLimits":{"requestsPerMinute":"10"}}}}', mint: [400, 'INVALID_REQUEST'], process: [400, 'INVALID_REQUEST'], field: 'requestAuthAndQuotas.requestQuotas.perClientRequestLimits.requestsPerMinute' },
  { name: 'requestsPerMinute as a hex string', body: '{"requestAuthAndQuotas":{"requestQuotas":{"globalRequestLimits":{"requestsPerMinute":"0x10"}}}}', mint: [400, 'INVALID_REQUEST'], process: [400, 'INVALID_REQUEST'], field: 'requestAuthAndQuotas.requestQuotas.globalRequestLimits.requestsPerMinute' },
  { name: 'requestsPerMinute 1e400 (Infinity)', body: '{"requestAuthAndQuotas":{"requestQuotas":{"globalRequestLimits":{"requestsPerMinute":1e400}}}}', mint: [400, 'INVALID_REQUEST'], process: [400, 'INVALID_REQUEST'], field: 'requestAuthAndQuotas.requestQuotas.globalRequestLimits.requestsPerMinute' },
  { name: 'requestsPerMinute 1.5', body: '{"requestAuthAndQuotas":{"requestQuotas":{"globalRequestLimits":{"requestsPerMinute":1.5}}}}', mint: [400, 'INVALID_REQUEST'], process: [400, 'INVALID_REQUEST'], field: 'requestAuthAndQuotas.requestQuotas.globalRequestLimits.requestsPerMinute' },
  { name: 'requestsPerMinute -0', body: '{"requestAuthAndQuotas":{"requestQuotas":{"globalRequestLimits":{"requestsPerMinute":-0}}}}', mint: [400, 'INVALID_REQUEST'], process: [400, 'INVALID_REQUEST'], field: 'requestAuthAndQuotas.requestQuotas.globalRequestLimits.requestsPerMinute' },
  { name: 'requestsPerMinute 2^53+1', body: '{"requestAuthAndQuotas":{"requestQuotas":{"globalRequestLimits":{"requestsPerMinute":9007199254740993}}}}', mint: [400, 'INVALID_REQUEST'], process: [400, 'INVALID_REQUEST'], field: 'requestAuthAndQuotas.requestQuotas.globalRequestLimits.requestsPerMinute' },
  { name: 'requestsPerMinute true', body: '{"requestAuthAndQuotas":{"requestQuotas":{"globalRequestLimits":{"requestsPerMinute":true}}}}', mint: [400, 'INVALID_REQUEST'], process: [400, 'INVALID_REQUEST'], field: 'requestAuthAndQuotas.requestQuotas.globalRequestLimits.requestsPerMinute' },
  { name: 'expirationTimeSpan as a number', body: '{"requestAuthAndQuotas":{},"expirationTimeSpan":7200}', mint: [400, 'INVALID_REQUEST'], process: [400, 'INVALID_REQUEST'], field: 'expirationTimeSpan' },
  { name: 'expirationTimeSpan as a numeric string', body: '{"requestAuthAndQuotas":{},"expirationTimeSpan":"7200"}', mint: [400, 'INVALID_REQUEST'], process: [400, 'INVALID_REQUEST'], field: 'expirationTimeSpan' },
  { name: 'expirationTimeSpan "1e400d"', body: '{"requestAuthAndQuotas":{},"expirationTimeSpan":"1e400d"}', mint: [400, 'INVALID_REQUEST'], process: [400, 'INVALID_REQUEST'], field: 'expirationTimeSpan' },
  { name: 'expirationTimeSpan "-5h"', body: '{"requestAuthAndQuotas":{},"expirationTimeSpan":"-5h"}', mint: [400, 'INVALID_REQUEST'], process: [400, 'INVALID_REQUEST'], field: 'expirationTimeSpan' },
  { name: 'stream as a string', body: process('hi', { stream: 'true' }), mint: [400, 'INVALID_REQUEST'], process: [400, 'INVALID_REQUEST'], field: 'request.stream' },
  { name: 'content as a number', body: process(42), mint: [400, 'INVALID_REQUEST'], process: [400, 'INVALID_REQUEST'], field: 'request.inputs.0.text.content' },
  { name: 'serviceSecrets as an object', body: '{"requestAuthAndQuotas":{"serviceSecrets":{"serviceId":"x","authSecret":"y"}}}', mint: [400, 'INVALID_REQUEST'], process: [400, 'INVALID_REQUEST'], field: 'requestAuthAndQuotas.serviceSecrets' },

  // the OpenAI-compatible endpoint's own fields
  { name: 'chat: model as a number', body: '', bodies: { chat: JSON.stringify({ model: 42, messages: [{ role: 'user', content: 'x' }] }) }, chat: [400, 'INVALID_REQUEST'], field: 'model' },
  { name: 'chat: messages as a string', body: '', bodies: { chat: JSON.stringify({ model: 'chat:echo/any', messages: 'hi' }) }, chat: [400, 'INVALID_REQUEST'], field: 'messages' },
  { name: 'chat: 5000 messages', body: '', bodies: { chat: JSON.stringify({ model: 'chat:echo/any', messages: Array.from({ length: 5000 }, () => ({ role: 'user', content: 'x' })) }) }, chat: [400, 'INVALID_REQUEST'], field: 'messages' },
  { name: 'chat: messages nested 30k deep', body: '', bodies: { chat: `{"model":"chat:echo/any","messages":${nested(30_000, '[', ']')}}` }, chat: [400, 'INVALID_REQUEST'] },
  { name: 'chat: messages nested to the limit', body: '', bodies: { chat: `{"model":"chat:echo/any","messages":[${nested(126, '[', ']')}]}` }, chat: [200, undefined] },
  { name: 'chat: stream as a string', body: '', bodies: { chat: chat('hi', { stream: 'true' }) }, chat: [400, 'INVALID_REQUEST'], field: 'stream' },
  { name: 'chat: a model of 5000 chars', body: '', bodies: { chat: chat('hi', {}, 'm'.repeat(5000)) }, chat: [400, 'INVALID_REQUEST'], field: 'model' },
  // a bare model belongs to the default service (chat:openai.com), for which this token has no secret
  { name: 'chat: model "__proto__"', body: '', bodies: { chat: chat('hi', {}, '__proto__') }, chat: [401, 'MISSING_API_KEY'] },
  { name: 'chat: model "constructor/x"', body: '', bodies: { chat: chat('hi', {}, 'constructor/x') }, chat: [401, 'MISSING_API_KEY'] },
  { name: 'chat: model "chat:__proto__"', body: '', bodies: { chat: chat('hi', {}, 'chat:__proto__') }, chat: [404, 'UNKNOWN_SERVICE'] },
  { name: 'chat: model "chat:constructor"', body: '', bodies: { chat: chat('hi', {}, 'chat:constructor') }, chat: [404, 'UNKNOWN_SERVICE'] },
  {
    name: 'chat: __proto__ with stream:true at the top must not turn streaming on',
    body: '',
    bodies: { chat: `{"__proto__":{"stream":true,"polluted":"yes"},${goodChat.slice(1)}` },
    chat: [200, undefined],
    check: (_endpoint, res) => {
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(echoed(res)).toBe('hi');
    },
  },
  { name: 'chat: constructor.prototype at the top', body: '', bodies: { chat: `{"constructor":{"prototype":{"polluted":"yes"}},${goodChat.slice(1)}` }, chat: [200, undefined] },
  {
    name: 'chat: duplicated content, the last is answered',
    body: '',
    bodies: { chat: '{"model":"chat:echo/any","messages":[{"role":"user","content":"first","content":"second"}]}' },
    chat: [200, undefined],
    check: (_endpoint, res) => expect(echoed(res)).toBe('second'),
  },
  ...(['\ud800', 'a\u0000b', '\u202eevil', '👩‍👩‍👧‍👦'] as const).map(
    (text): BodyCase => ({
      name: `chat: unicode ${JSON.stringify(text)} round-trips through echo`,
      body: '',
      bodies: { chat: chat(text) },
      chat: [200, undefined],
      check: (_endpoint, res) => expect(echoed(res)).toBe(text),
    }),
  ),

  // duplicated keys: the last one wins, and the token carries exactly that one
  {
    name: 'duplicated limit keys: the last wins in the token',
    body: '{"requestAuthAndQuotas":{"requestQuotas":{"globalRequestLimits":{"requestsPerMinute":1,"requestsPerMinute":7}}}}',
    mint: [200, undefined],
    process: [400, 'INVALID_REQUEST'],
    check: async (endpoint, res) => {
      if (endpoint === 'mint') expect((await claimsOf(res)).requestQuotas).toEqual({ globalRequestLimits: { requestsPerMinute: 7 } });
    },
  },
  {
    name: 'duplicated requestAuthAndQuotas: the last wins in the token',
    body: '{"requestAuthAndQuotas":{"serviceSecrets":[{"serviceId":"a","authSecret":"first"}]},"requestAuthAndQuotas":{}}',
    mint: [200, undefined],
    process: [400, 'INVALID_REQUEST'],
    check: async (endpoint, res) => {
      if (endpoint === 'mint') expect((await claimsOf(res)).serviceSecrets).toEqual([]);
    },
  },
  {
    name: 'duplicated content: the last is answered',
    body: '{"service":{"serviceId":"chat:echo"},"request":{"inputs":[{"text":{"role":"user","content":"first","content":"second"}}]}}',
    mint: [400, 'INVALID_REQUEST'],
    process: [200, undefined],
    check: (endpoint, res) => {
      if (endpoint === 'process') expect(echoed(res)).toBe('second');
    },
  },
];

describe('hostile bodies on mint and /api/v1/process', () => {
  let gw: TestGateway;
  let token: string;
  const bodies: string[] = [];

  beforeAll(async () => {
    gw = await startGateway();
    token = await mint(gw.url);
  });
  afterAll(() => gw.close());

  async function send(endpoint: Endpoint, c: BodyCase): Promise<RawResponse> {
    const path = { mint: '/api/v1/oauth/token', process: '/api/v1/process', chat: '/v1/chat/completions' }[endpoint];
    const body = c.bodies?.[endpoint] ?? c.body;
    let headers = c.headers ?? JSON_TYPE;
    if (endpoint !== 'mint') headers = [...headers, `Authorization: Bearer ${token}`];
    const res = await rawHttp(gw.port, requestText('POST', path, headers, body));
    bodies.push(res.body);
    return res;
  }

  for (const endpoint of ['mint', 'process', 'chat'] as const) {
    const run = async (c: BodyCase): Promise<void> => {
      const [status, code] = c[endpoint] as Expected;
      const res = await send(endpoint, c);
      if (code === undefined) {
        expect({ status: res.status, body: res.body.slice(0, 300) }).toMatchObject({ status });
      } else {
        const envelope = expectError(res.status, res.body, status, code, `${endpoint}: ${c.name}`);
        if (c.field !== undefined && status === 400 && fieldApplies(c.field, endpoint)) expect(envelope.error.details?.field).toBe(c.field);
        // a refusal names the problem; it never quotes a large part of the body back
        expect(res.body.length).toBeLessThan(1000);
      }
      await c.check?.(endpoint, res);
      // nothing was polluted, and the gateway still serves
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(Object.prototype).not.toHaveProperty('polluted');
      expect(Object.prototype).not.toHaveProperty('stream');
      expect(Object.prototype).not.toHaveProperty('requestsPerMinute');
    };
    const applicable = cases.filter((c) => c[endpoint] !== undefined);
    it.each(applicable)(`${endpoint}: $name`, run);
  }

  // body-parser would read the whole declared body before its 413: the limit is checked on the declaration first
  it.each(['/api/v1/oauth/token', '/api/v1/process', '/v1/chat/completions'])('a declared Content-Length of 50 MB with no body gets its 413 at once on %s', async (path) => {
    const request = requestText('POST', path, [...JSON_TYPE, `Authorization: Bearer ${token}`], '');
    const res = await rawHttp(gw.port, Buffer.from(request.toString('latin1').replace(/Content-Length: \d+/, 'Content-Length: 52428800'), 'latin1'), 1500);
    expectError(res.status, res.body, 413, 'PAYLOAD_TOO_LARGE');
  });

  it('still serves afterwards, and no log line or response holds the token', async () => {
    const res = await fetch(`${gw.url}/api/v1/process`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      body: goodProcess,
    });
    expect(res.status).toBe(200);
    expect(findLeaks([...gw.logs, ...bodies], { token })).toEqual([]);
    expect(gw.logs.some((l) => l.includes('"level":50'))).toBe(false);
  });
});

describe('hostile bodies forwarded upstream: what the gateway checked is what the upstream gets', () => {
  let mock: MockOpenAi;
  let gw: TestGateway;
  let token: string;
  beforeAll(async () => {
    mock = await MockOpenAi.start();
    gw = await startGateway({ OPENAI_BASE_URL: mock.baseUrl });
    token = await mint(gw.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: 'sk-forwarding-0123456789' }] } });
  });
  afterAll(async () => {
    await gw.close();
    await mock.close();
  });

  async function forward(body: string): Promise<{ status: number; upstream: string }> {
    const res = await rawHttp(gw.port, requestText('POST', '/v1/chat/completions', ['Content-Type: application/json', `Authorization: Bearer ${token}`], body));
    return { status: res.status, upstream: mock.received.at(-1)?.text ?? '' };
  }

  it('a plain body goes upstream as sent', async () => {
    const body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}],"temperature":0.5}';
    expect(await forward(body)).toEqual({ status: 200, upstream: body });
  });

  // The gateway checks (operator-key model lists, quotas per model) the last "model"; an upstream
  // whose parser takes the first would serve another model if the raw bytes went on as they came.
  it.each([
    ['two "model" keys', '{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"model":"gpt-4o-mini"}'],
    ['a \\u-escaped second "model"', '{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"\\u006dodel":"gpt-4o-mini"}'],
  ])('a body with %s reaches the upstream with one, the one the gateway checked', async (_name, body) => {
    const { status, upstream } = await forward(body);
    expect(status).toBe(200);
    expect(upstream.match(/"model"/g)?.length).toBe(1);
    expect((JSON.parse(upstream) as { model: string }).model).toBe('gpt-4o-mini');
  });
});
