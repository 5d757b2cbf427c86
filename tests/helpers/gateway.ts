import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Writable } from 'node:stream';
import { createGateway, type Gateway } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import type { Clock } from '../../src/clock.js';

export const TEST_SECRET = 'test-secret-0123456789-abcdefghijklmnopqrstuvwxyz';

export interface TestGateway {
  url: string;
  port: number;
  /** every log line the gateway wrote, raw JSON text */
  logs: string[];
  gateway: Gateway;
  close(): Promise<void>;
}

/** The real gateway on a free loopback port, logging into memory. */
export async function startGateway(env: Record<string, string> = {}, options: { clock?: Clock } = {}): Promise<TestGateway> {
  // API-wide per-address limits are off unless a test sets them: every test client is 127.0.0.1
  const config = loadConfig({ AISBREAKER_SECRET: TEST_SECRET, LOG_LEVEL: 'debug', API_MINT_LIMITS: 'off', API_AUTH_FAILURE_LIMITS: 'off', ...env });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logs.push(...chunk.toString('utf8').split('\n').filter((line) => line.length > 0));
      callback();
    },
  });
  const logger = createLogger(config.logLevel, sink);
  const gateway = createGateway({ config, secret: config.secret ?? TEST_SECRET, logger, ...options });
  await gateway.ready();
  const server: Server = await new Promise((resolve) => {
    const s = gateway.app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    logs,
    gateway,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await gateway.close();
    },
  };
}

export interface MintBody {
  requestAuthAndQuotas: {
    requestQuotas?: Record<string, Record<string, number>>;
    serviceSecrets?: { serviceId: string; authSecret: string }[];
  };
  expirationTimeSpan?: string;
}

/** Mints through the real endpoint and returns the access token. */
export async function mint(baseUrl: string, body: MintBody = { requestAuthAndQuotas: {} }, headers: Record<string, string> = {}): Promise<string> {
  const res = await fetch(`${baseUrl}/api/v1/oauth/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  if (res.status !== 200) throw new Error(`mint failed: ${res.status} ${await res.text()}`);
  const json = (await res.json()) as { access_token: string };
  return json.access_token;
}

export function processBody(serviceId: string, content: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ service: { serviceId }, request: { inputs: [{ text: { role: 'user', content } }], ...extra } });
}

export async function postProcess(baseUrl: string, token: string | undefined, body: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${baseUrl}/api/v1/process`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}), ...headers },
    body,
  });
}
