import { request as httpRequest } from 'node:http';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { TEST_SECRET, mint, postProcess, processBody } from './gateway.js';

/**
 * The body of the curl example in the AIsBreaker docs ("Create an AIsBreaker API Key",
 * aisbreaker.org/docs/aisbreaker-api-key), with a placeholder for $OPENAI_API_KEY: note the empty
 * secret for chat:dummy, the "{{secret}}" chaining entry and the catch-all.
 */
export const AISBREAKER_DOCS_MINT_BODY = {
  requestAuthAndQuotas: {
    requestQuotas: {
      perClientRequestLimits: { requestsPerMinute: 60, requestsPerHour: 600, requestsPerDay: 600 },
      globalRequestLimits: { requestsPerMinute: 120, requestsPerHour: 1200, requestsPerDay: 1200 },
    },
    serviceSecrets: [
      { serviceId: 'aisbreaker:network', authSecret: '{{secret}}' },
      { serviceId: 'chat:openai.com', authSecret: 'sk-docs-openai-key-000000000000000000' },
      { serviceId: 'chat:dummy', authSecret: '' },
      { serviceId: '', authSecret: 'INVALID' },
    ],
  },
  expirationTimeSpan: '365d',
};

/** One window of a tokeninfo's `usage`. */
export interface Usage {
  scope: string;
  unit?: string;
  window: string;
  limit: number;
  used: number;
  remaining: number;
  resetSeconds: number;
  ancestor?: string;
}

/** GET /api/v1/oauth/tokeninfo as the tests read it. */
export interface TokenInfo {
  active: boolean;
  jti: string;
  host: string;
  iat: number;
  exp: number;
  expires_in: number;
  services: string[];
  requestQuotas: unknown;
  parent?: string;
  depth?: number;
  usage: Usage[];
}

/** The body of the curl example in our README. */
export const DOCS_MINT_BODY = {
  requestAuthAndQuotas: {
    requestQuotas: {
      perClientRequestLimits: { requestsPerMinute: 10, requestsPerHour: 100, requestsPerDay: 500 },
      globalRequestLimits: { requestsPerMinute: 60, requestsPerHour: 1000, requestsPerDay: 5000 },
    },
    serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: 'sk-docs-example-openai-key-0000000000000000' }],
  },
  expirationTimeSpan: '30d',
};

export interface ErrorBody {
  success: false;
  error: { code: string; message: string; type: string; details?: Record<string, unknown> };
}

export interface Answer<T = unknown> {
  status: number;
  headers: Headers;
  text: string;
  json: T;
}

async function answer<T>(res: Response): Promise<Answer<T>> {
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json: json as T };
}

/** POST with a raw body and content type of the test's choosing. */
export async function postRaw<T = unknown>(url: string, body: string, contentType: string | undefined, headers: Record<string, string> = {}): Promise<Answer<T>> {
  return answer<T>(
    await fetch(url, {
      method: 'POST',
      headers: { ...(contentType === undefined ? {} : { 'Content-Type': contentType }), ...headers },
      // a Uint8Array body makes fetch add no Content-Type of its own
      body: contentType === undefined ? new TextEncoder().encode(body) : body,
    }),
  );
}

export function postJson<T = unknown>(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer<T>> {
  return postRaw<T>(url, JSON.stringify(body), 'application/json', headers);
}

export function postForm<T = unknown>(url: string, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<Answer<T>> {
  return postRaw<T>(url, new URLSearchParams(fields).toString(), 'application/x-www-form-urlencoded', headers);
}

export async function getJson<T = unknown>(url: string, headers: Record<string, string> = {}): Promise<Answer<T>> {
  return answer<T>(await fetch(url, { headers }));
}

/** The LLM tokens a token has used in its (first) LLM-token window, as its tokeninfo says; -1 without one. */
export async function llmTokensUsed(baseUrl: string, token: string): Promise<number> {
  return (await getJson<TokenInfo>(`${baseUrl}/api/v1/oauth/tokeninfo`, { Authorization: `Bearer ${token}` })).json.usage.find((u) => u.unit === 'tokens')?.used ?? -1;
}

export interface MintAnswer {
  access_token: string;
  token_type: string;
  expires_in: number;
}

export function mintRaw(baseUrl: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer<MintAnswer>> {
  return postJson<MintAnswer>(`${baseUrl}/api/v1/oauth/token`, body, headers);
}

/** Asserts the error envelope with this status and code; returns the error part. */
export function expectError(res: Answer, status: number, code: string): ErrorBody['error'] {
  expect(res.status, res.text).toBe(status);
  const body = res.json as ErrorBody;
  expect(body.success).toBe(false);
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe('string');
  expect(typeof body.error.type).toBe('string');
  return body.error;
}

/** A 400 INVALID_REQUEST naming `field` (in details.field and the message). */
export function expectInvalid(res: Answer, field: string): ErrorBody['error'] {
  const error = expectError(res, 400, 'INVALID_REQUEST');
  expect(error.details?.field).toBe(field);
  expect(error.message).toContain(field);
  return error;
}

export interface DummyAnswer {
  outputs: { text: { index: number; role: string; content: string } }[];
  conversationState?: string;
  usage?: unknown;
}

/** Uses a token on /api/v1/process with chat:dummy; returns the answer. */
export async function useToken(baseUrl: string, token: string | undefined, content = 'Hello', headers: Record<string, string> = {}): Promise<Answer<DummyAnswer>> {
  return answer<DummyAnswer>(await postProcess(baseUrl, token, processBody('chat:dummy', content), headers));
}

export async function expectServes(baseUrl: string, token: string): Promise<void> {
  const res = await useToken(baseUrl, token, 'still there?');
  expect(res.status, res.text).toBe(200);
  expect(res.json.outputs[0]?.text.content).toBe("Hello, the answer to 'still there?' from DummyAssistantService is unknown ...");
}

/** After a refused request: minting still works and the new token is served. */
export async function expectNothingLost(baseUrl: string, headers: Record<string, string> = {}): Promise<void> {
  const token = await mint(baseUrl, { requestAuthAndQuotas: {} }, headers);
  await expectServes(baseUrl, token);
}

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * The token with one char of JWE segment `segment` (0 header, 2 iv, 3 ciphertext, 4 tag) replaced
 * so that the decoded bytes really differ (the last char of a segment may carry padding bits that
 * a decoder ignores).
 */
export function tamperToken(token: string, segment = 3, at = 0): string {
  const parts = token.slice('aisbreaker_'.length).split('.');
  const original = parts[segment] ?? '';
  const pos = Math.max(0, Math.min(at, original.length - 1));
  for (const c of BASE64URL) {
    const altered = original.slice(0, pos) + c + original.slice(pos + 1);
    if (!Buffer.from(altered, 'base64url').equals(Buffer.from(original, 'base64url'))) {
      parts[segment] = altered;
      return 'aisbreaker_' + parts.join('.');
    }
  }
  throw new Error(`cannot alter segment ${segment} at ${pos}`);
}

export function decodeSegment(segment: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8')) as Record<string, unknown>;
}

/** The protected header of an aisbreaker_ token. */
export function tokenHeader(token: string): Record<string, unknown> {
  const [header] = token.slice('aisbreaker_'.length).split('.');
  return decodeSegment(header ?? '');
}

export interface RawResponse {
  status: number;
  body: string;
}

/** A request with headers fetch will not send (Host, repeated headers). */
export function rawRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string | string[]>; body?: string },
): Promise<RawResponse> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: target.hostname, port: target.port, path: target.pathname + target.search, method: options.method ?? 'GET', headers: options.headers ?? {} },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}

export function parseError(raw: RawResponse): ErrorBody['error'] {
  return (JSON.parse(raw.body) as ErrorBody).error;
}

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node dist/cli.js <args>` in a process of its own (build first). */
export function runCli(args: string[], env: Record<string, string> = {}, stdin?: string, cwd?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH ?? '', AISBREAKER_SECRET: TEST_SECRET, ...env },
      cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin ?? '');
  });
}

/** Polls `check` until it holds or `timeoutMs` passes; returns the elapsed ms. */
export async function within(timeoutMs: number, check: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check()) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
