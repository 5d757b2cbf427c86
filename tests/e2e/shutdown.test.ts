import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayProcess } from '../helpers/gateway-process.js';
import { mint, postProcess, processBody } from '../helpers/gateway.js';
import { MockOpenAi, mockAnswer } from '../helpers/mock-openai.js';

/**
 * Lifecycle of the built gateway process (dist/main.js: run `npm run build` first): SIGTERM with a
 * stream in flight, and start-up that fails fast on bad settings.
 *
 * chat:dummy streams its whole answer at once (it has no delay setting), so the slow stream here
 * comes from chat:openai.com pointed (OPENAI_BASE_URL, an ordinary setting) at a local mock
 * upstream that sends one chunk every `chunkDelayMs`.
 */

const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));
if (!existsSync(MAIN)) throw new Error('dist/main.js is missing: run `npm run build` before these tests');

const UPSTREAM_SECRET = 'sk-shutdown-upstream-secret-0123456789';
const QUESTION = 'please tell me slowly one two three four five six seven eight nine ten';

interface SseEvent {
  event: string;
  data: string;
}

function parseSse(text: string): SseEvent[] {
  return text
    .split('\n\n')
    .filter((block) => block.trim().length > 0)
    .map((block) => {
      const lines = block.split('\n');
      return {
        event: lines.find((l) => l.startsWith('event:'))?.slice(6).trim() ?? 'message',
        data: lines
          .filter((l) => l.startsWith('data:'))
          .map((l) => l.slice(5).trimStart())
          .join('\n'),
      };
    });
}

/** The text of all progress events so far, and the final event if there is one. */
function streamed(text: string): { progress: string; final: string | undefined } {
  const events = parseSse(text);
  const progress = events
    .filter((e) => e.event === 'progress')
    .map((e) => (JSON.parse(e.data) as { outputs: { text?: { content?: string } }[] }).outputs[0]?.text?.content ?? '')
    .join('');
  const finalEvent = events.find((e) => e.event === 'final');
  const final = finalEvent ? (JSON.parse(finalEvent.data) as { outputs: { text?: { content?: string } }[] }).outputs[0]?.text?.content : undefined;
  return { progress, final };
}

/** Reads a response body until `enough` says so; returns what was read and the reader to go on with. */
async function readUntil(res: Response, enough: (text: string) => boolean): Promise<{ text: string; reader: ReadableStreamDefaultReader<Uint8Array> }> {
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (!enough(text)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  return { text, reader };
}

async function readRest(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<{ text: string; error: unknown }> {
  const decoder = new TextDecoder();
  let text = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return { text, error: undefined };
      text += decoder.decode(value, { stream: true });
    }
  } catch (error) {
    return { text, error };
  }
}

/** Tries a new TCP connection and one request on it: 'refused', or the status it got. */
function tryNewConnection(url: string): Promise<'refused' | number> {
  const target = new URL('/api/v1/ping', url);
  return new Promise((resolve, reject) => {
    const req = request({ host: target.hostname, port: target.port, path: target.pathname, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNREFUSED' ? resolve('refused') : reject(err)));
    req.end();
  });
}

async function mintForUpstream(url: string): Promise<string> {
  return mint(url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: UPSTREAM_SECRET }] } });
}

function startStream(url: string, token: string): Promise<Response> {
  return postProcess(url, token, processBody('chat:openai.com/gpt-4o-mini', QUESTION, { stream: true }));
}

describe('graceful shutdown of the gateway process (SIGTERM)', () => {
  let mock: MockOpenAi;
  beforeAll(async () => {
    mock = await MockOpenAi.start();
  });
  afterAll(() => mock?.close());

  it('refuses new connections, lets a stream in flight finish completely, and exits 0 within SHUTDOWN_GRACE_MS', async () => {
    const graceMs = 8000;
    mock.chunkDelayMs = 150; // ~17 chunks: ~2.5 s
    const gw = await GatewayProcess.start({ OPENAI_BASE_URL: mock.baseUrl, SHUTDOWN_GRACE_MS: String(graceMs) });
    try {
      const token = await mintForUpstream(gw.url);
      const res = await startStream(gw.url, token);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/event-stream');
      const { text: head, reader } = await readUntil(res, (t) => t.includes('event: progress'));
      expect(streamed(head).final).toBeUndefined();

      const signalledAt = Date.now();
      const exited = gw.stop('SIGTERM').then((code) => ({ code, ms: Date.now() - signalledAt }));
      // the listener closes at once: a new connection is refused while the stream goes on
      let refusedAfterMs: number | undefined;
      while (refusedAfterMs === undefined && Date.now() - signalledAt < 3000) {
        if ((await tryNewConnection(gw.url)) === 'refused') refusedAfterMs = Date.now() - signalledAt;
        else await new Promise((resolve) => setTimeout(resolve, 25));
      }
      expect(refusedAfterMs).toBeDefined();

      const rest = await readRest(reader);
      const streamEndedMs = Date.now() - signalledAt;
      expect(rest.error).toBeUndefined();
      const { progress, final } = streamed(head + rest.text);
      expect(progress).toBe(mockAnswer(QUESTION));
      expect(final).toBe(mockAnswer(QUESTION));
      // the new connection was refused before the stream was done: the stream really was in flight
      expect(refusedAfterMs).toBeLessThan(streamEndedMs);
      expect(streamEndedMs).toBeGreaterThan(500);

      const { code, ms } = await exited;
      expect(code).toBe(0);
      expect(ms).toBeLessThan(graceMs);
      expect(ms).toBeGreaterThanOrEqual(streamEndedMs - 50);
      // and promptly once it is: the stream's kept-alive connection does not hold the exit for its idle timeout
      expect(ms - streamEndedMs).toBeLessThan(1500);
      expect(gw.output.join('\n')).toMatch(/shutting down/);
      expect(gw.output.join('\n')).not.toMatch(/grace period over/);
    } finally {
      await gw.stop('SIGKILL');
    }
  });

  it('SIGINT with idle kept-alive connections open exits 0 at once, not after their keep-alive timeout', async () => {
    const gw = await GatewayProcess.start({ SHUTDOWN_GRACE_MS: '10000' });
    try {
      // fetch keeps these connections open after the answers
      for (let i = 0; i < 3; i++) expect((await fetch(`${gw.url}/api/v1/ping`)).status).toBe(200);
      const signalledAt = Date.now();
      expect(await gw.stop('SIGINT')).toBe(0);
      expect(Date.now() - signalledAt).toBeLessThan(2000);
    } finally {
      await gw.stop('SIGKILL');
    }
  });

  it('cuts a stream that outlasts the grace period, cancels its upstream call, and still exits 0', async () => {
    const graceMs = 700;
    mock.chunkDelayMs = 400; // ~17 chunks: ~7 s, far beyond the grace
    const gw = await GatewayProcess.start({ OPENAI_BASE_URL: mock.baseUrl, SHUTDOWN_GRACE_MS: String(graceMs) });
    try {
      const token = await mintForUpstream(gw.url);
      const res = await startStream(gw.url, token);
      expect(res.status).toBe(200);
      const { text: head, reader } = await readUntil(res, (t) => t.includes('event: progress'));
      const upstreamCancelled = mock.waitForEarlyClose();

      const signalledAt = Date.now();
      const { code } = await gw.stop('SIGTERM').then((c) => ({ code: c }));
      const exitedMs = Date.now() - signalledAt;
      expect(code).toBe(0);
      expect(exitedMs).toBeGreaterThanOrEqual(graceMs - 50);
      expect(exitedMs).toBeLessThan(graceMs + 3000);

      const rest = await readRest(reader);
      const { progress, final } = streamed(head + rest.text);
      expect(final).toBeUndefined();
      expect(progress.length).toBeLessThan(mockAnswer(QUESTION).length);
      expect(gw.output.join('\n')).toMatch(/grace period over/);
      await Promise.race([upstreamCancelled, new Promise((_, reject) => setTimeout(() => reject(new Error('the upstream call was not cancelled')), 2000))]);
    } finally {
      mock.chunkDelayMs = 0;
      await gw.stop('SIGKILL');
    }
  });
});

interface StartAttempt {
  code: number | null;
  stdout: string;
  /** the lines on stderr */
  errors: string[];
  ms: number;
}

/** Starts dist/main.js expecting it to fail: its exit code and what it wrote. */
function startExpectingFailure(env: Record<string, string>, dataDir: string): Promise<StartAttempt> {
  const started = Date.now();
  const child = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', AISBREAKER_DATA_DIR: dataDir, AISBREAKER_SECRET: 'startup-test-secret-0123456789abcdefghijkl', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, errors: stderr.split('\n').filter((l) => l.trim().length > 0), ms: Date.now() - started });
    });
  });
}

describe('start-up fails fast with one clear line per bad setting', () => {
  const BAD_SECRET = 'too-short-SECRET-xyz';
  const KEY = 'startup-operator-key-0123456789abcdef';
  let dir: string;
  let busy: Server;
  let busyPort: number;
  /** every attempt started at once in beforeAll (each is a Node process loading the gateway) */
  let attempts: Record<string, StartAttempt>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'aisbgw-startup-'));
    busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const address = busy.address();
    busyPort = typeof address === 'object' && address ? address.port : 0;
    writeFileSync(join(dir, 'broken.json'), '{"keys": {');
    execFileSync('mkfifo', [join(dir, 'fifo.json')]);
    writeFileSync(join(dir, 'huge.json'), `{"pad":"${'x'.repeat(5 * 1024 * 1024)}"}`);
    writeFileSync(join(dir, 'invalid.json'), JSON.stringify({ keys: { [KEY]: { project: 'P', role: 'nope' } }, roles: { r: { limits: { 'chat:dummy': { requestMinute: -1 } } } } }));
    const envs: Record<string, Record<string, string>> = {
      badSecret: { AISBREAKER_SECRET: BAD_SECRET },
      portTooLarge: { PORT: '99999' },
      portNotANumber: { PORT: 'http' },
      portInUse: { PORT: String(busyPort) },
      configMissing: { AISBREAKER_CONFIG: join(dir, 'missing.json') },
      configNotJson: { AISBREAKER_CONFIG: join(dir, 'broken.json') },
      configInvalid: { AISBREAKER_CONFIG: join(dir, 'invalid.json') },
      configFifo: { AISBREAKER_CONFIG: join(dir, 'fifo.json') },
      configHuge: { AISBREAKER_CONFIG: join(dir, 'huge.json') },
      several: { AISBREAKER_SECRET: 'short', PORT: '-1', QUOTA_BACKEND_FAILURE: 'maybe', SHUTDOWN_GRACE_MS: 'soon' },
      envAndFile: { PORT: 'http', AISBREAKER_CONFIG: join(dir, 'invalid.json') },
      envAndMissingFile: { PORT: 'http', AISBREAKER_CONFIG: join(dir, 'missing.json') },
    };
    const results = await Promise.all(Object.entries(envs).map(async ([name, env]) => [name, await startExpectingFailure(env, dir)] as const));
    attempts = Object.fromEntries(results);
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => busy?.close(() => resolve()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function expectFailure(name: string, lines: RegExp[]): StartAttempt {
    const attempt = attempts[name];
    if (!attempt) throw new Error(`no attempt ${name}`);
    expect(attempt.code).not.toBe(0);
    expect(attempt.code).not.toBeNull();
    // fast: it waits for nothing (the time is Node loading the modules, slow only on a busy machine)
    expect(attempt.ms).toBeLessThan(20_000);
    expect(attempt.errors).toHaveLength(lines.length);
    lines.forEach((line, i) => expect(attempt.errors[i]).toMatch(line));
    // one line each, no stack trace, and the process never got to listen
    expect(attempt.errors.join('\n')).not.toMatch(/^\s+at /m);
    expect(attempt.stdout).not.toMatch(/listening/);
    return attempt;
  }

  it('a bad secret: names the setting, never the value', () => {
    const attempt = expectFailure('badSecret', [/^config error: AISBREAKER_SECRET: too short/]);
    expect(attempt.errors.join('\n') + attempt.stdout).not.toContain(BAD_SECRET);
  });

  it('a bad port', () => {
    expectFailure('portTooLarge', [/^config error: PORT: "99999" is not a port number/]);
    expectFailure('portNotANumber', [/^config error: PORT: "http" is not a port number/]);
  });

  it('a port in use', () => {
    expectFailure('portInUse', [new RegExp(`^cannot listen on 127\\.0\\.0\\.1:${busyPort}: EADDRINUSE`)]);
  });

  it('a config file that is missing, not JSON, or invalid: one line per problem, naming the file', () => {
    expectFailure('configMissing', [/^config error: AISBREAKER_CONFIG: cannot read .*missing\.json \(ENOENT\)/]);
    expectFailure('configNotJson', [/^config error: .*broken\.json: not valid JSON/]);
    const attempt = expectFailure('configInvalid', [
      /^config error: .*invalid\.json: roles\.r\..*requestMinute.*positive integer/,
      /^config error: .*invalid\.json: keys\[sha256:[0-9a-f]{12}…\]: role "nope" does not exist/,
    ]);
    expect(attempt.errors.join('\n')).not.toContain(KEY);
  });

  it('a config path that is no regular file (a FIFO would block the read) or a file over 4 MB: refused before reading', () => {
    expectFailure('configFifo', [/^config error: .*fifo\.json: not a regular file/]);
    expectFailure('configHuge', [/^config error: .*huge\.json: larger than 4194304 bytes/]);
  });

  it('several bad settings at once: one line for each', () => {
    expectFailure('several', [/^config error: PORT:/, /^config error: AISBREAKER_SECRET:/, /^config error: QUOTA_BACKEND_FAILURE:/, /^config error: SHUTDOWN_GRACE_MS:/]);
  });

  it('bad settings and a bad config file: the problems of both are listed, not the file only once the settings are fixed', () => {
    const attempt = expectFailure('envAndFile', [
      /^config error: PORT: "http"/,
      /^config error: .*invalid\.json: roles\.r\..*requestMinute.*positive integer/,
      /^config error: .*invalid\.json: keys\[sha256:[0-9a-f]{12}…\]: role "nope" does not exist/,
    ]);
    expect(attempt.errors.join('\n')).not.toContain(KEY);
    expectFailure('envAndMissingFile', [/^config error: PORT: "http"/, /^config error: AISBREAKER_CONFIG: cannot read .*missing\.json \(ENOENT\)/]);
  });
});
