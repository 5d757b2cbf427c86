import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { AIsError, processService, type ResponseFinal, type ServiceProps } from '../helpers/aisbreaker-client.js';
import { GatewayProcess } from '../helpers/gateway-process.js';
import { mint, postProcess, startGateway, TEST_SECRET, type TestGateway } from '../helpers/gateway.js';
import { MOCK_USAGE, MockOpenAi, mockAnswer } from '../helpers/mock-openai.js';
import { startRecorder, type Recorder } from '../helpers/recorder.js';
import { TestRedis } from '../helpers/redis-server.js';

/**
 * The original AIsBreaker client against the gateway, case by case as the original server's
 * integration tests (test/src/__test__/integration/ of aisbreaker-js) drive it: RemoteRemoteDummyChat,
 * RemoteErrorPropagation, RemoteOpenaiComChat. Their chain client -> server -> aisbreaker:network
 * (url) -> server -> aisbreaker:mirror -> chat:dummy runs here through two gateway processes, A and
 * B; chat:openai.com is a local OpenAI mock.
 */

const INVALID_URL = 'http://localhost-invalid:80';
const JS_PROMPT = 'What is JavaScript?';
const JS_MIRRORED = 'tpircSavaJ';
const OPENAI_KEY = 'sk-callers-own-openai-key-0123456789';
const VAULTED_KEY = 'sk-vaulted-in-the-token-0123456789';
const OPENAI_401 = {
  error: {
    message: 'Incorrect API key provided: sk-inval*********test. You can find your API key at https://platform.openai.com/account/api-keys.',
    type: 'invalid_request_error',
    code: 'invalid_api_key',
  },
};

async function failure(run: () => Promise<unknown>): Promise<AIsError> {
  try {
    await run();
  } catch (err) {
    if (err instanceof AIsError) return err;
    throw err;
  }
  throw new Error('expected the client to throw an AIsError');
}

describe('the original client through two gateway processes', () => {
  let mock: MockOpenAi;
  let a: GatewayProcess;
  let b: GatewayProcess;
  /** minted on A, valid on B (same secret, same host name): passes itself on to the gateway it names */
  let token: string;
  let chain: ServiceProps;

  beforeAll(async () => {
    mock = await MockOpenAi.start();
    b = await GatewayProcess.start({ OPENAI_BASE_URL: mock.baseUrl, AISBREAKER_NETWORK_URLS: '*', AISBREAKER_OPEN_ACCESS: 'on' });
    a = await GatewayProcess.start({ OPENAI_BASE_URL: mock.baseUrl, AISBREAKER_NETWORK_URLS: `${b.url},${INVALID_URL}`, AISBREAKER_OPEN_ACCESS: 'on' });
    token = await mint(a.url, {
      requestAuthAndQuotas: {
        serviceSecrets: [
          { serviceId: 'aisbreaker:network', authSecret: '{{secret}}' },
          { serviceId: 'chat:openai.com', authSecret: VAULTED_KEY },
        ],
      },
    });
    chain = { serviceId: 'aisbreaker:network', url: b.url, forward2ServiceProps: { serviceId: 'aisbreaker:mirror', forward2ServiceProps: { serviceId: 'chat:dummy' } } };
  }, 40_000);
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await mock?.close();
  });

  describe('RemoteRemoteDummyChat', () => {
    it('without stream, aisbreaker key, success', async () => {
      const [final, text] = await processService(a.url, chain, { secret: token }, JS_PROMPT, false);
      expect(text?.toLowerCase()).toContain(JS_MIRRORED.toLowerCase());
      // mirror reports the service it mirrored, as the original's MirrorFilter
      expect(final.usage.engine.serviceId).toBe('aisbreaker:mirror/service/chat:dummy');
    });

    it('with stream, aisbreaker key, success', async () => {
      const [, text, streamed] = await processService(a.url, chain, { secret: token }, JS_PROMPT, true);
      expect(text?.toLowerCase()).toContain(JS_MIRRORED.toLowerCase());
      // each streamed word is mirrored on its own, as the original's MirrorFilter does
      expect(streamed).toContain(JS_MIRRORED.slice(0, 4));
    });

    it.each([false, true])('invalid access token (stream %s): 401 "Invalid aisbreaker access token"', async (stream) => {
      const error = await failure(() => processService(a.url, chain, { secret: 'aisbreaker_test_with_invalid_api_key' }, JS_PROMPT, stream));
      expect(error.statusCode).toBe(401);
      expect(error.message).toContain('Invalid aisbreaker access token');
    });
  });

  describe('RemoteErrorPropagation', () => {
    const invalidChain = (): ServiceProps => ({ serviceId: 'aisbreaker:network', url: b.url, forward2ServiceProps: { serviceId: 'aisbreaker:mirror', forward2ServiceProps: { serviceId: 'chat:invalid' } } });
    const longerInvalidChain = (): ServiceProps => ({ serviceId: 'aisbreaker:network', url: b.url, forward2ServiceProps: invalidChain() });
    const invalidUrl = (): ServiceProps => ({ serviceId: 'aisbreaker:network', url: INVALID_URL, forward2ServiceProps: { serviceId: 'aisbreaker:network', url: b.url, forward2ServiceProps: { serviceId: 'aisbreaker:echo' } } });
    const chainToInvalidUrl = (): ServiceProps => ({ serviceId: 'aisbreaker:network', url: b.url, forward2ServiceProps: { serviceId: 'aisbreaker:network', url: INVALID_URL, forward2ServiceProps: { serviceId: 'aisbreaker:echo' } } });

    it.each([false, true])('invalid access token, but not needed (stream %s): open access passes a third-party bearer on, success', async (stream) => {
      const [, text] = await processService(a.url, chain, { secret: 'test_with_third_party_or_invalid_api_key' }, JS_PROMPT, stream);
      expect(text?.toLowerCase()).toContain(JS_MIRRORED.toLowerCase());
    });

    it.each([
      ['complex invalid remote service chain', false, invalidChain],
      ['complex invalid remote service chain', true, invalidChain],
      ['longer complex invalid remote service chain', false, longerInvalidChain],
      ['longer complex invalid remote service chain', true, longerInvalidChain],
    ])('%s (stream %s): 404 naming the serviceId as the original does', async (_name, stream, props) => {
      const error = await failure(() => processService(a.url, props(), { secret: token }, JS_PROMPT, stream));
      expect(error.statusCode).toBe(404);
      expect(error.message).toContain("No factory registered for serviceId 'chat:invalid'");
    });

    it.each([
      ['simple', false, invalidUrl],
      ['simple', true, invalidUrl],
      ['chain', false, chainToInvalidUrl],
      ['chain', true, chainToInvalidUrl],
    ])('remote service chain with invalid URL/invalid hostname (%s, stream %s): 503 with the resolver\'s reason', async (_name, stream, props) => {
      const error = await failure(() => processService(a.url, props(), { secret: token }, JS_PROMPT, stream));
      expect(error.statusCode).toBe(503);
      expect(error.message).toContain('Error');
      expect(error.message).toContain('getaddrinfo');
      expect(error.message).toContain('localhost-invalid');
      // the gateway that failed names itself; the calling gateway's redaction of the caller's own
      // token must leave the prefix all tokens share alone (the "aisbreak..." over-redaction of issue 13)
      expect(error.message).toContain('service "aisbreaker:network" at localhost-invalid');
    });

    it('a stream that breaks mid-way ends with an error event carrying its status, through both gateways', async () => {
      mock.next({ kind: 'drop-mid-stream' });
      const props: ServiceProps = { serviceId: 'aisbreaker:network', url: b.url, forward2ServiceProps: { serviceId: 'chat:openai.com' } };
      let streamed = '';
      const error = await failure(async () => {
        const [, , progress] = await processService(a.url, props, { secret: token }, JS_PROMPT, true);
        streamed = progress ?? '';
      });
      expect(streamed).toBe('');
      expect(error.statusCode).toBe(502);
      expect(error.statusText).toBe('Bad Gateway');
      expect(error.message).toContain('the connection broke');
      // it did break mid-way: progress first, then the error event with the status in its envelope
      mock.next({ kind: 'drop-mid-stream' });
      const raw = await postProcess(a.url, token, JSON.stringify({ service: props, request: { inputs: [{ text: { role: 'user', content: JS_PROMPT } }], stream: true } }));
      expect(raw.status).toBe(200);
      const events = await raw.text();
      expect(events.indexOf('event: progress')).toBeGreaterThanOrEqual(0);
      expect(events.indexOf('event: error')).toBeGreaterThan(events.indexOf('event: progress'));
      expect(events).toContain('"statusCode":502,"statusText":"Bad Gateway"');
    });
  });

  describe('RemoteOpenaiComChat (on a local OpenAI mock)', () => {
    const openai: ServiceProps = { serviceId: 'chat:openai.com' };

    it.each([false, true])('openai key (stream %s): the caller\'s own key goes to the service it asked for', async (stream) => {
      const [final, text, streamed] = await processService(a.url, openai, { secret: OPENAI_KEY }, JS_PROMPT, stream);
      expect(text).toBe(mockAnswer(JS_PROMPT));
      if (stream) expect(streamed).toBe(text);
      expect(mock.received.at(-1)?.headers.authorization).toBe(`Bearer ${OPENAI_KEY}`);
      expect(final.usage.totalTokens).toBe(MOCK_USAGE.total_tokens);
      // the caller's key is never logged
      expect(a.output.join('\n')).not.toContain(OPENAI_KEY.slice(3, 20));
    });

    it.each([false, true])('aisbreaker key (stream %s): the token\'s vaulted key goes to the operator\'s upstream', async (stream) => {
      const [, text, streamed] = await processService(a.url, openai, { secret: token }, JS_PROMPT, stream);
      expect(text).toBe(mockAnswer(JS_PROMPT));
      if (stream) expect(streamed).toBe(text);
      expect(mock.received.at(-1)?.headers.authorization).toBe(`Bearer ${VAULTED_KEY}`);
    });

    it.each([false, true])('invalid openai key (stream %s): OpenAI\'s 401 and its words', async (stream) => {
      mock.next({ kind: 'fail', status: 401, body: OPENAI_401 });
      const error = await failure(() => processService(a.url, openai, { secret: 'sk-invalid_api_key_for_test' }, JS_PROMPT, stream));
      expect(error.statusCode).toBe(401);
      expect(error.message).toContain('Incorrect API key provided');
      expect(error.message).toContain('You can find your API key at https://platform.openai.com/account/api-keys');
    });

    it('through the chain, the token counts of the upstream arrive in usage', async () => {
      const [final, text] = await processService(a.url, { serviceId: 'aisbreaker:network', url: b.url, forward2ServiceProps: openai }, { secret: token }, JS_PROMPT, false);
      expect(text).toBe(mockAnswer(JS_PROMPT));
      expect(final.usage.totalTokens).toBe(MOCK_USAGE.total_tokens);
    });
  });

  it('serves the AIsBreaker API under /api/v1alpha1 too', async () => {
    const res = await fetch(`${a.url}/api/v1alpha1/process`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      body: JSON.stringify({ service: { serviceId: 'aisbreaker:nop', forward2ServiceProps: { serviceId: 'chat:echo' } }, request: { inputs: [{ text: { role: 'user', content: 'alpha' } }] } }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as ResponseFinal).outputs[0]?.text?.content).toBe('alpha');
  });
});

describe('a gateway the request names gets only the caller\'s own credential', () => {
  let gw: TestGateway;
  let recorder: Recorder;

  beforeAll(async () => {
    recorder = await startRecorder();
    gw = await startGateway({ AISBREAKER_NETWORK_URLS: `${recorder.url}/gw` });
  });
  afterAll(async () => {
    await gw.close();
    await recorder.close();
  });

  const via = (url: string, serviceId = 'chat:dummy'): ServiceProps => ({ serviceId: 'aisbreaker:network', url, forward2ServiceProps: { serviceId } });

  it('never sends a vaulted secret there: 403 before any call, checked at the receiving server', async () => {
    const vaulted = await mint(gw.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: '', authSecret: VAULTED_KEY }] } });
    const error = await failure(() => processService(gw.url, via(`${recorder.url}/gw`), { secret: vaulted }, 'x', false));
    expect(error.statusCode).toBe(403);
    expect(error.message).toContain('{{secret}}');
    expect(recorder.hits).toEqual([]);
  });

  it('sends the token itself where it says "{{secret}}", with the rest of the chain, and no other secret', async () => {
    const passing = await mint(gw.url, {
      requestAuthAndQuotas: {
        serviceSecrets: [
          { serviceId: 'aisbreaker:network', authSecret: '{{secret}}' },
          { serviceId: '', authSecret: VAULTED_KEY },
        ],
      },
    });
    const [, text] = await processService(gw.url, via(`${recorder.url}/gw/`, 'aisbreaker:mirror'), { secret: passing }, 'x', false);
    expect(text).toBe('recorded');
    expect(recorder.hits).toHaveLength(1);
    expect(recorder.hits[0]?.authorization).toBe(`Bearer ${passing}`);
    expect(recorder.hits[0]?.body).not.toContain(VAULTED_KEY);
    expect(JSON.parse(recorder.hits[0]?.body ?? '{}')).toEqual({ service: { serviceId: 'aisbreaker:mirror' }, request: { inputs: [{ text: { role: 'user', content: 'x' } }], stream: false } });
  });

  it('a token without "{{secret}}" for it: 401 saying how to pass it on', async () => {
    const plain = await mint(gw.url, { requestAuthAndQuotas: {} });
    const error = await failure(() => processService(gw.url, via(`${recorder.url}/gw`), { secret: plain }, 'x', false));
    expect(error.statusCode).toBe(401);
    expect(error.message).toContain('"authSecret":"{{secret}}"');
  });

  it.each([
    ['a URL outside AISBREAKER_NETWORK_URLS', (gw: string): unknown => ({ serviceId: 'aisbreaker:network', url: `${gw}/gwx`, forward2ServiceProps: { serviceId: 'chat:dummy' } }), 'service.url', 'AISBREAKER_NETWORK_URLS'],
    ['another port', (gw: string): unknown => ({ serviceId: 'aisbreaker:network', url: 'http://127.0.0.1:1/gw', forward2ServiceProps: { serviceId: 'chat:dummy' } }), 'service.url', 'AISBREAKER_NETWORK_URLS'],
    ['credentials in the URL', (gw: string): unknown => ({ serviceId: 'aisbreaker:network', url: gw.replace('http://', 'http://user:pw@') + '/gw', forward2ServiceProps: { serviceId: 'chat:dummy' } }), 'service.url', 'credentials'],
    ['not http', (gw: string): unknown => ({ serviceId: 'aisbreaker:network', url: 'file:///etc/passwd', forward2ServiceProps: { serviceId: 'chat:dummy' } }), 'service.url', 'http(s) URL'],
    ['not a URL', (gw: string): unknown => ({ serviceId: 'aisbreaker:network', url: 'nowhere', forward2ServiceProps: { serviceId: 'chat:dummy' } }), 'service.url', 'http(s) URL'],
    ['a url not a string', (gw: string): unknown => ({ serviceId: 'aisbreaker:network', url: 42, forward2ServiceProps: { serviceId: 'chat:dummy' } }), 'service.url', 'must be a string'],
    ['a url too long', (gw: string): unknown => ({ serviceId: 'aisbreaker:network', url: `${gw}/gw/${'x'.repeat(3000)}`, forward2ServiceProps: { serviceId: 'chat:dummy' } }), 'service.url', '2048'],
    ['a url on another service', (gw: string): unknown => ({ serviceId: 'chat:openai.com', url: `${gw}/gw` }), 'service.url', 'aisbreaker:network'],
    ['a url on a filter', (gw: string): unknown => ({ serviceId: 'aisbreaker:mirror', url: `${gw}/gw`, forward2ServiceProps: { serviceId: 'chat:dummy' } }), 'service.url', 'takes no url'],
    ['a url without the service behind it', (gw: string): unknown => ({ serviceId: 'aisbreaker:network', url: `${gw}/gw` }), 'service.forward2ServiceProps', 'needs the service'],
    ['a filter without the service behind it', (gw: string): unknown => ({ serviceId: 'aisbreaker:logging' }), 'service.forward2ServiceProps', 'name the service'],
    ['a next hop without serviceId', (gw: string): unknown => ({ serviceId: 'aisbreaker:nop', forward2ServiceProps: { url: 'x' } }), 'service.forward2ServiceProps.serviceId', ''],
    ['an unknown service behind a filter', (gw: string): unknown => ({ serviceId: 'aisbreaker:nop', forward2ServiceProps: { serviceId: 'chat:nowhere' } }), undefined, "No factory registered for serviceId 'chat:nowhere'"],
  ])('%s: a clear error', async (_name, serviceAt, field, words) => {
    const service = serviceAt(recorder.url);
    const token = await mint(gw.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'aisbreaker:network', authSecret: '{{secret}}' }] } });
    const res = await postProcess(gw.url, token, JSON.stringify({ service, request: { inputs: [{ text: { role: 'user', content: 'x' } }] } }));
    const body = (await res.json()) as { error: { code: string; message: string; statusCode: number; statusText: string; details?: { field?: string } } };
    expect(res.status).toBe(field === undefined ? 404 : 400);
    expect(body.error.statusCode).toBe(res.status);
    if (field !== undefined) expect(body.error.details?.field).toBe(field);
    expect(body.error.message).toContain(words);
    expect(recorder.hits).toHaveLength(1);
  });

  it('refuses a chain nested deeper than 16 services, unparsed (and JSON nested past the body limit before that)', async () => {
    const token = await mint(gw.url, { requestAuthAndQuotas: {} });
    const nested = (depth: number): string =>
      `{"service":${'{"serviceId":"aisbreaker:nop","forward2ServiceProps":'.repeat(depth)}{"serviceId":"chat:dummy"}${'}'.repeat(depth)},"request":{"inputs":[]}}`;
    const chain = await postProcess(gw.url, token, nested(50));
    expect(chain.status).toBe(400);
    expect(((await chain.json()) as { error: { message: string } }).error.message).toContain('at most 16 services');
    expect((await postProcess(gw.url, token, nested(5000))).status).toBe(400);
  });

  it('an operator API key is never sent there, even where its role lists the service (and stays a key under open access)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aisbgw-compat-'));
    const key = 'operator-key-for-the-compat-tests-0123';
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ keys: { [key]: { project: 'P', role: 'r' } }, roles: { r: { limits: { 'aisbreaker:network/chat:dummy': {} } } } }));
    const keyed = await startGateway({ AISBREAKER_CONFIG: join(dir, 'config.json'), AISBREAKER_NETWORK_URLS: '*', AISBREAKER_OPEN_ACCESS: 'on' });
    try {
      const error = await failure(() => processService(keyed.url, via(`${recorder.url}/gw`), { secret: key }, 'x', false));
      expect(error.statusCode).toBe(403);
      expect(error.message).toContain('operator API key is never sent');
      expect(recorder.hits).toHaveLength(1);
    } finally {
      await keyed.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('filters inside one gateway', () => {
  let gw: TestGateway;
  let token: string;
  beforeAll(async () => {
    gw = await startGateway();
    token = await mint(gw.url, { requestAuthAndQuotas: {} });
  });
  afterAll(() => gw.close());

  it('mirror, nop and logging chain in the order named; logging logs the shape at debug, never the text', async () => {
    const props: ServiceProps = { serviceId: 'aisbreaker:logging', forward2ServiceProps: { serviceId: 'aisbreaker:nop', forward2ServiceProps: { serviceId: 'aisbreaker:mirror', forward2ServiceProps: { serviceId: 'chat:echo' } } } };
    for (const stream of [false, true]) {
      const [final, text, streamed] = await processService(gw.url, props, { secret: token }, 'secret words here', stream);
      expect(text).toBe('ereh sdrow terces');
      // each streamed word mirrored on its own ("secret " -> " terces")
      if (stream) expect(streamed).toBe(' terces sdrowereh');
      expect(final.usage.engine.serviceId).toBe('aisbreaker:mirror/service/chat:echo');
    }
    const logged = gw.logs.filter((line) => line.includes('aisbreaker:logging'));
    expect(logged.length).toBe(4);
    expect(logged.every((line) => line.includes('"level":20'))).toBe(true);
    expect(logged[0]).toContain('"chars":17');
    expect(gw.logs.join('\n')).not.toContain('secret words');
  });

  it('refuses a caller-named URL while AISBREAKER_NETWORK_URLS is unset, naming the setting', async () => {
    const res = await postProcess(gw.url, token, JSON.stringify({ service: { serviceId: 'aisbreaker:network', url: 'http://127.0.0.1:9', forward2ServiceProps: { serviceId: 'chat:dummy' } }, request: { inputs: [] } }));
    expect(res.status).toBe(400);
    const error = ((await res.json()) as { error: { message: string; details: { field: string } } }).error;
    expect(error.details.field).toBe('service.url');
    expect(error.message).toContain('AISBREAKER_NETWORK_URLS');
  });
});

describe('open access', () => {
  it('off (default): 401s say how to mint a token and which setting opens the server', async () => {
    const gw = await startGateway();
    try {
      for (const credential of [undefined, OPENAI_KEY]) {
        const res = await postProcess(gw.url, credential, JSON.stringify({ service: { serviceId: 'chat:dummy' }, request: { inputs: [] } }));
        expect(res.status).toBe(401);
        const error = ((await res.json()) as { error: { message: string; statusCode: number; statusText: string } }).error;
        expect(error).toMatchObject({ statusCode: 401, statusText: 'Unauthorized' });
        expect(error.message).toContain('POST /api/v1/oauth/token');
        expect(error.message).toContain('AISBREAKER_OPEN_ACCESS=on');
      }
    } finally {
      await gw.close();
    }
  });

  it('on: default quotas per client address; a bad aisbreaker token is still refused; token endpoints stay closed', async () => {
    const gw = await startGateway({ AISBREAKER_OPEN_ACCESS: 'on', OPEN_ACCESS_CLIENT_LIMITS: '3/minute' });
    try {
      const ask = (credential: string | undefined): Promise<Response> => postProcess(gw.url, credential, JSON.stringify({ service: { serviceId: 'chat:dummy' }, request: { inputs: [{ text: { role: 'user', content: 'hi' } }] } }));
      expect((await ask(undefined)).status).toBe(200);
      const admitted = await ask(OPENAI_KEY);
      expect(admitted.status).toBe(200);
      expect(admitted.headers.get('ratelimit-remaining')).toBe('1');
      expect((await ask(undefined)).status).toBe(200);
      const refused = await ask(undefined);
      expect(refused.status).toBe(429);
      const limited = ((await refused.json()) as { error: { message: string; details: { scope: string; limit: number } } }).error;
      expect(limited.details).toMatchObject({ scope: 'client', limit: 3 });
      expect(limited.message).toContain('3 requests per minute for this client of open access');
      // a token is held against its own quotas, not open access's
      const token = await mint(gw.url, { requestAuthAndQuotas: {} });
      expect((await ask(token)).status).toBe(200);
      const bad = await ask('aisbreaker_garbage');
      expect(bad.status).toBe(401);
      expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/^Invalid aisbreaker access token/);
      const info = await fetch(`${gw.url}/api/v1/oauth/tokeninfo`, { headers: { Authorization: `Bearer ${OPENAI_KEY}` } });
      expect(info.status).toBe(401);
      expect(gw.logs.join('\n')).not.toContain(OPENAI_KEY.slice(3, 20));
    } finally {
      await gw.close();
    }
  });

  it('on: the global limit holds exactly across instances sharing Redis', async () => {
    const redis = await TestRedis.start();
    const limit = 5;
    const env = { REDIS_URL: redis.url, AISBREAKER_OPEN_ACCESS: 'on', OPEN_ACCESS_CLIENT_LIMITS: 'off', OPEN_ACCESS_GLOBAL_LIMITS: `${limit}/minute` };
    const one = await startGateway(env);
    const two = await startGateway(env);
    try {
      const statuses = await Promise.all(
        Array.from({ length: 12 }, (_, i) => postProcess((i % 2 ? one : two).url, undefined, JSON.stringify({ service: { serviceId: 'chat:dummy' }, request: { inputs: [] } })).then((r) => r.status)),
      );
      const admitted = statuses.filter((s) => s === 200).length;
      // exactly the limit on the server of its own; a shared TEST_REDIS_URL may hold this minute's earlier runs
      if (process.env.TEST_REDIS_URL === undefined) expect(admitted).toBe(limit);
      else expect(admitted).toBeLessThanOrEqual(limit);
      expect(statuses.filter((s) => s === 429).length).toBe(12 - admitted);
    } finally {
      await one.close();
      await two.close();
      await redis.stop();
    }
  });
});

describe('settings', () => {
  it.each([
    [{ AISBREAKER_NETWORK_URLS: 'ftp://x' }, 'AISBREAKER_NETWORK_URLS: "ftp://x"'],
    [{ AISBREAKER_NETWORK_URLS: 'https://u:p@gw.example.com' }, 'without credentials'],
    [{ AISBREAKER_NETWORK_URLS: 'https://gw.example.com,*' }, '"*"'],
    [{ AISBREAKER_OPEN_ACCESS: 'yes' }, 'AISBREAKER_OPEN_ACCESS: must be "on" or "off"'],
    [{ OPEN_ACCESS_CLIENT_LIMITS: '10/fortnight' }, 'OPEN_ACCESS_CLIENT_LIMITS'],
    [{ OPEN_ACCESS_GLOBAL_LIMITS: 'many' }, 'OPEN_ACCESS_GLOBAL_LIMITS'],
  ])('%o stops the start with a clear problem', (env, words) => {
    let problem: unknown;
    try {
      loadConfig({ AISBREAKER_SECRET: TEST_SECRET, ...env });
    } catch (err) {
      problem = err;
    }
    expect(problem).toBeInstanceOf(ConfigError);
    expect((problem as ConfigError).problems.join('\n')).toContain(words);
  });

  it('normalizes the allowed prefixes and keeps the defaults of the contract', () => {
    const config = loadConfig({ AISBREAKER_SECRET: TEST_SECRET, AISBREAKER_NETWORK_URLS: 'HTTPS://GW.example.com:443/base/, http://127.0.0.1:8080' });
    expect(config.networkUrls).toEqual(['https://gw.example.com/base', 'http://127.0.0.1:8080']);
    expect(config.openAccess).toBe(false);
    expect(config.openAccessClientLimits).toEqual([
      { count: 60, window: 'minute' },
      { count: 360, window: 'hour' },
      { count: 8640, window: 'day' },
    ]);
    expect(config.openAccessGlobalLimits.map((l) => l.count)).toEqual([600, 3600, 86400]);
  });
});
