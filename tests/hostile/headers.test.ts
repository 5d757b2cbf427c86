import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mint, startGateway, type TestGateway } from '../helpers/gateway.js';
import { expectError, findLeaks, rawHttp, requestText, type RawResponse } from '../helpers/hostile.js';

/**
 * Hostile headers on every credential-taking endpoint, sent byte for byte over a raw socket:
 * ambiguous credentials, malformed Authorization values, injection characters, oversized lines.
 * Where Node's HTTP parser refuses a request before the gateway sees it, the answer must still be
 * a clear 4xx (400/431) and the connection closed, never a 500 or a hang.
 */

type Endpoint = 'mint' | 'process' | 'chat';
const PATHS: Record<Endpoint, string> = { mint: '/api/v1/oauth/token', process: '/api/v1/process', chat: '/v1/chat/completions' };
const BODIES: Record<Endpoint, string> = {
  mint: JSON.stringify({ requestAuthAndQuotas: {}, expirationTimeSpan: '1h' }),
  process: JSON.stringify({ service: { serviceId: 'chat:echo' }, request: { inputs: [{ text: { role: 'user', content: 'hi' } }] } }),
  chat: JSON.stringify({ model: 'chat:echo/any', messages: [{ role: 'user', content: 'hi' }] }),
};

interface HeaderCase {
  name: string;
  /** header lines (the token is filled in for `$T`); sent as latin1 bytes */
  headers: string[];
  /** [status, code] on every endpoint, or per endpoint; code undefined: success, or Node's own refusal (no envelope) */
  expect: [number, string | undefined] | Record<Endpoint, [number, string | undefined]>;
  /** the request text is rewritten as a whole (for request-line or framing cases) */
  rewrite?: (request: string) => string;
  check?: (res: RawResponse) => void;
}

const INVALID: [number, string] = [401, 'INVALID_API_KEY'];
const OK: [number, undefined] = [200, undefined];
/** refused by Node's parser: a plain 400 without our envelope */
const NODE_400: [number, undefined] = [400, undefined];

const cases: HeaderCase[] = [
  { name: 'control: Authorization: Bearer <token>', headers: ['Authorization: Bearer $T'], expect: OK },
  { name: 'control: Api-Key: <token>', headers: ['Api-Key: $T'], expect: OK },
  { name: 'two Authorization headers, same token', headers: ['Authorization: Bearer $T', 'Authorization: Bearer $T'], expect: INVALID },
  { name: 'two Authorization headers, the second garbage', headers: ['Authorization: Bearer $T', 'Authorization: Bearer aisbreaker_x'], expect: INVALID },
  { name: 'two Api-Key headers', headers: ['Api-Key: $T', 'Api-Key: $T'], expect: INVALID },
  { name: 'Authorization and Api-Key with different values', headers: ['Authorization: Bearer $T', 'Api-Key: aisbreaker_other'], expect: INVALID },
  { name: 'Authorization and Api-Key with the same value', headers: ['Authorization: Bearer $T', 'Api-Key: $T'], expect: OK },
  { name: 'an empty Api-Key beside Authorization', headers: ['Authorization: Bearer $T', 'Api-Key: '], expect: OK },
  { name: 'Authorization: Basic', headers: ['Authorization: Basic dXNlcjpwYXNzd29yZA=='], expect: INVALID },
  { name: 'Authorization: Bearer without a value', headers: ['Authorization: Bearer'], expect: INVALID },
  { name: 'Authorization: Bearer with two values', headers: ['Authorization: Bearer $T extra'], expect: INVALID },
  { name: 'Authorization: the token without "Bearer"', headers: ['Authorization: $T'], expect: INVALID },
  { name: 'Authorization: lower-case bearer', headers: ['Authorization: bearer $T'], expect: OK },
  { name: 'Authorization: a tab after Bearer', headers: ['Authorization: Bearer\t$T'], expect: INVALID },
  { name: 'Authorization: surrounding whitespace', headers: ['Authorization:    Bearer $T   '], expect: OK },
  { name: 'Authorization: a comma-joined pair', headers: ['Authorization: Bearer $T, Bearer $T'], expect: INVALID },
  { name: 'Authorization: latin1 bytes', headers: ['Authorization: Bearer aisbreaker_\u00e9\u00ff\u00a0x'], expect: INVALID },
  // minting without an admin key configured takes no credential, and an operator-key-like one is ignored
  { name: 'Api-Key: latin1 bytes', headers: ['Api-Key: \u00e9\u00ff-key-0123456789'], expect: { mint: OK, process: INVALID, chat: INVALID } },
  { name: 'Authorization: 11000 chars (over the credential limit)', headers: [`Authorization: Bearer aisbreaker_${'A'.repeat(11_000)}`], expect: INVALID },
  { name: 'Api-Key: 11000 chars', headers: [`Api-Key: ${'k'.repeat(11_000)}`], expect: INVALID },
  {
    name: 'the token in the query string only: never a credential',
    headers: [],
    rewrite: (r) => r.replace(/^POST (\S+) /, 'POST $1?access_token=$T&token=$T&api-key=$T '),
    expect: { mint: OK, process: [401, 'MISSING_API_KEY'], chat: [401, 'MISSING_API_KEY'] },
  },
  // injection characters: refused by Node's parser, or harmless
  { name: 'NUL in the Authorization value', headers: ['Authorization: Bearer $T\u0000'], expect: NODE_400 },
  { name: 'a bare CR in the Authorization value', headers: ['Authorization: Bearer $T\rX-Injected: 1'], expect: NODE_400 },
  { name: 'a control char (0x01) in a header value', headers: ['X-Request-Id: abc\u0001def', 'Authorization: Bearer $T'], expect: NODE_400 },
  { name: 'obs-fold continuation of Authorization', headers: ['Authorization: Bearer', ' $T'], expect: NODE_400 },
  { name: 'a space in a header name', headers: ['Author ization: Bearer $T'], expect: NODE_400 },
  { name: 'Content-Length and Transfer-Encoding together', headers: ['Authorization: Bearer $T', 'Transfer-Encoding: chunked'], expect: NODE_400 },
  {
    name: 'two different Content-Length headers',
    headers: ['Authorization: Bearer $T'],
    rewrite: (r) => r.replace(/Content-Length: (\d+)/, 'Content-Length: $1\r\nContent-Length: 3'),
    expect: NODE_400,
  },
  {
    name: 'X-Request-Id with injection characters is replaced, not echoed',
    headers: ['Authorization: Bearer $T', 'X-Request-Id: a"b<script>\u00e9'],
    expect: OK,
    check: (res) => expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/),
  },
  {
    name: 'X-Request-Id of 300 chars is replaced',
    headers: ['Authorization: Bearer $T', `X-Request-Id: ${'r'.repeat(300)}`],
    expect: OK,
    check: (res) => expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/),
  },
  {
    name: 'X-Request-Id holding a key (a client put it in the wrong header) is replaced: never echoed nor logged',
    headers: ['Authorization: Bearer $T', 'X-Request-Id: sk-proj-abcdefghijklmnop0123456789'],
    expect: OK,
    check: (res) => expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/),
  },
  {
    name: 'a plain X-Request-Id is echoed',
    headers: ['Authorization: Bearer $T', 'X-Request-Id: hostile-test-1'],
    expect: OK,
    check: (res) => expect(res.headers['x-request-id']).toBe('hostile-test-1'),
  },
  // very long header lines
  { name: 'one header line of 20 KB', headers: ['Authorization: Bearer $T', `X-Pad: ${'p'.repeat(20_000)}`], expect: [431, undefined] },
  { name: 'Authorization of 70 KB', headers: [`Authorization: Bearer aisbreaker_${'A'.repeat(70_000)}`], expect: [431, undefined] },
  { name: '400 header lines of 50 bytes (20 KB in all)', headers: ['Authorization: Bearer $T', ...Array.from({ length: 400 }, (_, i) => `X-H${i}: ${'v'.repeat(44)}`)], expect: [431, undefined] },
  { name: '150 header lines of 50 bytes (7.5 KB, within limits)', headers: ['Authorization: Bearer $T', ...Array.from({ length: 150 }, (_, i) => `X-H${i}: ${'v'.repeat(44)}`)], expect: OK },
  // Host
  {
    name: 'no Host header (HTTP/1.1)',
    headers: ['Authorization: Bearer $T'],
    rewrite: (r) => r.replace(/\r\nHost: [^\r]*/, ''),
    expect: NODE_400,
  },
  // Node keeps the first of two Host headers: the binding follows it, whatever comes after (mint derives from the token, so it checks the host too)
  { name: 'two Host headers, ours first', headers: ['Authorization: Bearer $T', 'Host: evil.example'], expect: OK },
  {
    name: 'two Host headers, another first',
    headers: ['Authorization: Bearer $T', 'Host: 127.0.0.1'],
    rewrite: (r) => r.replace('Host: 127.0.0.1', 'Host: evil.example'),
    expect: [401, 'WRONG_HOST'],
  },
];

describe('hostile headers on mint, /api/v1/process and /v1/chat/completions', () => {
  let gw: TestGateway;
  let token: string;
  const responses: string[] = [];

  beforeAll(async () => {
    gw = await startGateway();
    token = await mint(gw.url, { requestAuthAndQuotas: {}, expirationTimeSpan: '2h' });
  });
  afterAll(() => gw.close());

  for (const endpoint of ['mint', 'process', 'chat'] as const) {
    it.each(cases)(`${endpoint}: $name`, async (c) => {
      const [status, code] = Array.isArray(c.expect) ? c.expect : c.expect[endpoint];
      const headers = ['Content-Type: application/json', ...c.headers.map((h) => h.replaceAll('$T', token))];
      let request = requestText('POST', PATHS[endpoint], headers, BODIES[endpoint]);
      if (c.rewrite) request = Buffer.from(c.rewrite(request.toString('latin1')).replaceAll('$T', token), 'latin1');
      const res = await rawHttp(gw.port, request);
      responses.push(res.raw);
      if (code !== undefined) {
        expectError(res.status, res.body, status, code, `${endpoint}: ${c.name}`);
      } else {
        expect({ status: res.status, body: res.body.slice(0, 200) }).toMatchObject({ status });
      }
      c.check?.(res);
    });
  }

  it('still serves afterwards; no response or log line quotes the token; no unhandled error', async () => {
    const res = await rawHttp(gw.port, requestText('POST', PATHS.process, ['Content-Type: application/json', `Authorization: Bearer ${token}`], BODIES.process));
    expect(res.status).toBe(200);
    // the mint responses of the control cases carry new child tokens, never the presented one
    expect(findLeaks([...responses, ...gw.logs], { token, tokenCiphertext: token.slice(-60, -30), keyInRequestId: 'sk-proj-abcdefghijklmnop0123456789' })).toEqual([]);
    expect(gw.logs.filter((l) => l.includes('"level":50'))).toEqual([]);
  });
});
