import { connect } from 'node:net';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { mint, postProcess, processBody, startGateway, type TestGateway } from '../helpers/gateway.js';
import { MOCK_USAGE, MockOpenAi, mockAnswer } from '../helpers/mock-openai.js';
import { getJson, type TokenInfo } from '../helpers/lifecycle-helpers.js';
import { startRecorder } from '../helpers/recorder.js';

const SECRET = 'sk-forwarding-secret-0123456789ab';
const DUMMY = (text: string): string => `Hello, the answer to '${text}' from DummyAssistantService is unknown ...`;

interface SseEvent {
  event: string;
  data: unknown;
}

async function events(res: Response): Promise<SseEvent[]> {
  const text = await res.text();
  return text
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => {
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
      const data = block
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map((l) => l.slice(6))
        .join('\n');
      return { event, data: JSON.parse(data) as unknown };
    });
}

function outputText(final: unknown): string {
  return (final as { outputs: { text: { content: string } }[] }).outputs[0]?.text.content ?? '';
}

function writeConfig(path: string, config: unknown): void {
  writeFileSync(path + '.tmp', JSON.stringify(config));
  renameSync(path + '.tmp', path);
}

describe('AIsBreaker /api/v1/process on an OpenAI upstream', () => {
  let mock: MockOpenAi;
  let gw: TestGateway;
  let token: string;

  beforeAll(async () => {
    mock = await MockOpenAi.start();
    gw = await startGateway({ OPENAI_BASE_URL: mock.baseUrl });
    token = await mint(gw.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: SECRET }] } });
  });
  afterAll(async () => {
    await gw.close();
    await mock.close();
  });

  it('answers JSON, and carries the conversation on in conversationState', async () => {
    const first = await postProcess(gw.url, token, processBody('chat:openai.com/gpt-4o', 'first question'));
    expect(first.status).toBe(200);
    const final = (await first.json()) as { outputs: { text: { content: string } }[]; conversationState: string };
    expect(outputText(final)).toBe(mockAnswer('first question'));
    expect(mock.received.at(-1)?.body.model).toBe('gpt-4o');
    expect(mock.received.at(-1)?.headers.authorization).toBe(`Bearer ${SECRET}`);

    const second = await postProcess(gw.url, token, processBody('chat:openai.com', 'second', { conversationState: final.conversationState }));
    expect(second.status).toBe(200);
    // the default engine, and the whole history sent upstream
    expect(mock.received.at(-1)?.body.model).toBe('gpt-4o-mini');
    expect(mock.received.at(-1)?.body.messages).toEqual([
      { role: 'user', content: 'first question' },
      { role: 'assistant', content: mockAnswer('first question') },
      { role: 'user', content: 'second' },
    ]);
  });

  it('streams progress events whose text adds up to the final text', async () => {
    mock.chunkDelayMs = 2;
    const res = await postProcess(gw.url, token, processBody('chat:openai.com/gpt-4o-mini', 'stream it please', { stream: true }));
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const all = await events(res);
    const progress = all.filter((e) => e.event === 'progress');
    const final = all.find((e) => e.event === 'final');
    expect(progress.length).toBeGreaterThan(2);
    const streamed = progress.map((e) => (e.data as { outputs: { text: { content: string } }[] }).outputs[0]?.text.content ?? '').join('');
    expect(streamed).toBe(mockAnswer('stream it please'));
    expect(outputText(final?.data)).toBe(streamed);
  });

  it('keeps the status of an upstream failure that happens before the stream starts', async () => {
    mock.next({ kind: 'fail', status: 429, body: { error: { message: 'You exceeded your current quota', code: 'insufficient_quota' } } });
    const res = await postProcess(gw.url, token, processBody('chat:openai.com', 'x', { stream: true }));
    expect(res.status).toBe(429);
    expect(((await res.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'RATE_LIMITED', message: 'You exceeded your current quota' });
  });

  it('never calls a URL the caller chose (AISBREAKER_NETWORK_URLS unset), and sends the secret nowhere else', async () => {
    const trap = await startRecorder();
    try {
      const before = mock.received.length;
      for (const service of [
        { serviceId: 'chat:openai.com', url: trap.url },
        { serviceId: 'aisbreaker:network', url: trap.url, forward2ServiceProps: { serviceId: 'chat:openai.com' } },
        { serviceId: 'aisbreaker:nop', forward2ServiceProps: { serviceId: 'chat:openai.com', url: trap.url } },
      ]) {
        const res = await postProcess(gw.url, token, JSON.stringify({ service, request: { inputs: [{ text: { role: 'user', content: 'x' } }] } }));
        expect(res.status).toBe(400);
        const body = (await res.json()) as { error: { code: string; details: { field: string } } };
        expect(body.error.code).toBe('INVALID_REQUEST');
        expect(body.error.details.field).toMatch(/url$/);
      }
      // an OpenAI body naming a URL is just a field for the upstream: the gateway goes where its config says
      const chat = await fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
        body: JSON.stringify({ model: 'gpt-4o-mini', base_url: trap.url, url: trap.url, messages: [{ role: 'user', content: 'x' }] }),
      });
      expect(chat.status).toBe(200);
      expect(trap.hits).toEqual([]);
      expect(mock.received.length).toBe(before + 1);
    } finally {
      await trap.close();
    }
  });
});

describe('chaining: gateway -> aisbreaker:network -> gateway -> chat:dummy (or OpenAI)', () => {
  let mock: MockOpenAi;
  let front: TestGateway;
  let back: TestGateway;
  let dir: string;
  let forwardingToken: string;

  beforeAll(async () => {
    mock = await MockOpenAi.start();
    back = await startGateway({ OPENAI_BASE_URL: mock.baseUrl });
    dir = mkdtempSync(join(tmpdir(), 'aisbgw-chain-'));
    const configPath = join(dir, 'config.json');
    writeConfig(configPath, { services: { 'aisbreaker:network': { kind: 'aisbreaker', baseUrl: back.url } } });
    front = await startGateway({ AISBREAKER_CONFIG: configPath });
    // both share the server secret and the host name 127.0.0.1: the caller's token is valid on both
    forwardingToken = await mint(front.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'aisbreaker:network', authSecret: '{{secret}}' }] } });
  });
  afterAll(async () => {
    await front.close();
    await back.close();
    await mock.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('forwards /api/v1/process, JSON and streaming, naming the remote service either way', async () => {
    const json = await postProcess(front.url, forwardingToken, processBody('aisbreaker:network/chat:dummy', 'chained?'));
    expect(json.status).toBe(200);
    expect(outputText(await json.json())).toBe(DUMMY('chained?'));

    const asAisBreaker = await postProcess(
      front.url,
      forwardingToken,
      JSON.stringify({ service: { serviceId: 'aisbreaker:network', forward2ServiceProps: { serviceId: 'chat:echo' } }, request: { inputs: [{ text: { role: 'user', content: 'echo through two' } }], stream: true } }),
    );
    const all = await events(asAisBreaker);
    const streamed = all
      .filter((e) => e.event === 'progress')
      .map((e) => (e.data as { outputs: { text: { content: string } }[] }).outputs[0]?.text.content ?? '')
      .join('');
    expect(streamed).toBe('echo through two');
    expect(outputText(all.find((e) => e.event === 'final')?.data)).toBe('echo through two');
    // the back gateway really served it
    expect(back.logs.some((line) => line.includes('/api/v1/process'))).toBe(true);
  });

  it('forwards /v1/chat/completions with the remote model name', async () => {
    const res = await fetch(`${front.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${forwardingToken}` },
      body: JSON.stringify({ model: 'aisbreaker:network/chat:dummy', messages: [{ role: 'user', content: 'via openai api' }] }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { choices: { message: { content: string } }[] };
    expect(body.choices[0]?.message.content).toBe(DUMMY('via openai api'));
  });

  it('answers 404 UNKNOWN_SERVICE for an unknown remote service, also when streaming', async () => {
    for (const stream of [false, true]) {
      const res = await postProcess(front.url, forwardingToken, processBody('aisbreaker:network/chat:nowhere', 'x', { stream }));
      expect(res.status).toBe(404);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('UNKNOWN_SERVICE');
      expect(body.error.message).toContain('chat:nowhere');
    }
    const local = await postProcess(front.url, forwardingToken, processBody('chat:nowhere', 'x', { stream: true }));
    expect(local.status).toBe(404);
  });

  it('LLM-token limits: charges the remote usage of JSON and streamed chat completions to the token here', async () => {
    // the token goes on to the back gateway ({{secret}}), which calls OpenAI with the token's key
    const token = await mint(front.url, {
      requestAuthAndQuotas: {
        requestQuotas: { globalRequestLimits: { tokensPerDay: 10_000 } },
        serviceSecrets: [
          { serviceId: 'aisbreaker:network', authSecret: '{{secret}}' },
          { serviceId: 'chat:openai.com', authSecret: 'sk-upstream-of-the-back-gateway' },
        ],
      },
    });
    const used = async (): Promise<number> =>
      (await getJson<TokenInfo>(`${front.url}/api/v1/oauth/tokeninfo`, { Authorization: `Bearer ${token}` })).json.usage.find((u) => u.unit === 'tokens')?.used ?? -1;
    for (const stream of [false, true]) {
      const res = await fetch(`${front.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
        body: JSON.stringify({ model: 'aisbreaker:network/chat:openai.com/gpt-4o-mini', messages: [{ role: 'user', content: 'count me' }], stream }),
      });
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text).toContain('Mock');
      // a caller that did not ask for the usage chunk does not get it
      if (stream) expect(text).not.toContain('total_tokens');
    }
    expect(await used()).toBe(2 * MOCK_USAGE.total_tokens);
    expect(mock.received).toHaveLength(2);
  });
  it('needs the remote service named', async () => {
    const res = await postProcess(front.url, forwardingToken, processBody('aisbreaker:network', 'x'));
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { details: { field: string } } }).error.details.field).toBe('service.serviceId');
  });
});

describe('services in the config file', () => {
  it('refuses to start with an invalid services section, naming the service and the problem', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aisbgw-badsvc-'));
    const path = join(dir, 'config.json');
    try {
      writeConfig(path, { services: { 'chat:x': { kind: 'openai', baseUrl: 'file:///etc/passwd' }, 'chat:y': { kind: 'teleport' } } });
      const failure = await startGateway({ AISBREAKER_CONFIG: path }).catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(ConfigError);
      const problems = (failure as ConfigError).problems.join('\n');
      expect(problems).toContain('services.chat:x.baseUrl');
      expect(problems).toContain('services.chat:y');
      writeConfig(path, { services: {}, defaults: { service: 'chat:missing' } });
      const badDefault = await startGateway({ AISBREAKER_CONFIG: path }).catch((e: unknown) => e);
      expect((badDefault as ConfigError).problems.join('\n')).toContain('defaults.service');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reloads services on change: new calls go to the new upstream, a bad edit keeps the old one', async () => {
    const first = await MockOpenAi.start();
    const second = await MockOpenAi.start();
    const dir = mkdtempSync(join(tmpdir(), 'aisbgw-reload-'));
    const path = join(dir, 'config.json');
    writeConfig(path, { services: { 'chat:ollama': { kind: 'openai', baseUrl: first.baseUrl, defaultModel: 'llama3:8b' } }, defaults: { service: 'chat:ollama' } });
    const gw = await startGateway({ AISBREAKER_CONFIG: path });
    try {
      const token = await mint(gw.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:ollama', authSecret: SECRET }] } });
      const ask = (model: string): Promise<Response> =>
        fetch(`${gw.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
          body: JSON.stringify({ model, messages: [{ role: 'user', content: 'x' }] }),
        });
      // a bare model with a colon (Ollama's names) belongs to the default service
      expect((await ask('llama3:8b')).status).toBe(200);
      expect(first.received.at(-1)?.body.model).toBe('llama3:8b');

      writeConfig(path, { services: { 'chat:ollama': { kind: 'openai', baseUrl: second.baseUrl } }, defaults: { service: 'chat:ollama' } });
      const deadline = Date.now() + 5000;
      while (second.received.length === 0 && Date.now() < deadline) {
        await ask('llama3:8b');
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(second.received.length).toBeGreaterThan(0);

      writeFileSync(path, '{ "services": { "chat:ollama": { "kind": "openai" } } }');
      await new Promise((r) => setTimeout(r, 400));
      const before = second.received.length;
      expect((await ask('llama3:8b')).status).toBe(200);
      expect(second.received.length).toBe(before + 1);
      expect(gw.logs.some((line) => line.includes('config file change ignored'))).toBe(true);
    } finally {
      await gw.close();
      await first.close();
      await second.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('local services paced by streamDelayMs', () => {
  let gw: TestGateway;
  let dir: string;
  let token: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'aisbgw-slow-'));
    const configPath = join(dir, 'config.json');
    writeConfig(configPath, { services: { 'chat:slow': { kind: 'echo', streamDelayMs: 40 } } });
    gw = await startGateway({ AISBREAKER_CONFIG: configPath });
    token = await mint(gw.url, { requestAuthAndQuotas: {} });
  });
  afterAll(async () => {
    await gw.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stops a paced stream when the client leaves, on both APIs, and keeps serving', async () => {
    const words = Array.from({ length: 40 }, (_, i) => `w${i}`).join(' ');
    const requests = [
      { path: '/v1/chat/completions', body: JSON.stringify({ model: 'chat:slow', messages: [{ role: 'user', content: words }], stream: true }) },
      { path: '/api/v1/process', body: processBody('chat:slow', words, { stream: true }) },
    ];
    for (const { path, body } of requests) {
      const controller = new AbortController();
      const res = await fetch(`${gw.url}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` }, body, signal: controller.signal });
      const reader = res.body?.getReader();
      const first = await reader?.read();
      expect(first?.done).toBe(false);
      controller.abort();
      // the pacing timers notice the abort; the gateway neither crashes nor logs a failure
      await new Promise((r) => setTimeout(r, 150));
    }
    const after = await postProcess(gw.url, token, processBody('chat:slow', 'still here'));
    expect(after.status).toBe(200);
    expect(outputText(await after.json())).toBe('still here');
    expect(gw.logs.some((line) => line.includes('"level":50'))).toBe(false);
  });

  it('streams the paced answer whole to a client that stays', async () => {
    const res = await postProcess(gw.url, token, processBody('chat:slow', 'a b c d', { stream: true }));
    const all = await events(res);
    expect(all.filter((e) => e.event === 'progress')).toHaveLength(4);
    expect(outputText(all.find((e) => e.event === 'final')?.data)).toBe('a b c d');
  });
});

describe('back-pressure: a client that stops reading holds the stream, not the gateway memory', () => {
  let gw: TestGateway;
  let token: string;

  beforeAll(async () => {
    gw = await startGateway();
    token = await mint(gw.url, { requestAuthAndQuotas: {} });
  });
  afterAll(async () => {
    await gw.close();
  });

  it.each([
    ['/api/v1/process', (text: string) => processBody('chat:echo', text, { stream: true })],
    ['/v1/chat/completions', (text: string) => JSON.stringify({ model: 'chat:echo', messages: [{ role: 'user', content: text }], stream: true })],
  ])('%s', async (path, bodyOf) => {
    // 250,000 words: tens of MB of events if the gateway wrote them all regardless of the client
    const body = bodyOf('w '.repeat(250_000));
    const socket = connect(gw.port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.pause();
    const before = memoryInUse();
    socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    await new Promise((r) => setTimeout(r, 1500));
    const grown = memoryInUse() - before;
    socket.destroy();
    expect(grown).toBeLessThan(25 * 1024 * 1024);
    // and the gateway still serves
    expect((await postProcess(gw.url, token, processBody('chat:echo', 'after'))).status).toBe(200);
  });
});

function memoryInUse(): number {
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

describe('HTTP/1.1 pipelining', () => {
  it('answers every pipelined request on one connection (a queued response has no socket of its own yet)', async () => {
    const mock = await MockOpenAi.start();
    const gw = await startGateway({ OPENAI_BASE_URL: mock.baseUrl });
    try {
      const token = await mint(gw.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: SECRET }] } });
      const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'piped' }] });
      const request = `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
      const socket = connect(gw.port, '127.0.0.1');
      let received = '';
      const answered = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only got: ${received.slice(0, 300)}`)), 5000);
        socket.on('data', (chunk: Buffer) => {
          received += chunk.toString('utf8');
          if ((received.match(/"finish_reason":"stop"/g) ?? []).length === 3) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      socket.write(request + request + request);
      await answered;
      socket.destroy();
      expect(received.match(/HTTP\/1\.1 200 OK/g)).toHaveLength(3);
      expect(received.split(JSON.stringify(mockAnswer('piped')).slice(1, -1)).length - 1).toBe(3);
      expect(mock.received.filter((r) => r.closedEarly)).toEqual([]);
    } finally {
      await gw.close();
      await mock.close();
    }
  });
});
