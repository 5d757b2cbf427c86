import { createCipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { deflateRawSync } from 'node:zlib';
import { EncryptJWT } from 'jose';
import { expect } from 'vitest';

/**
 * Tools for hostile-input tests: hand-made JWEs (any header, any payload, the gateway's real key
 * derivation re-implemented from the design so a mistake in either shows up), raw HTTP over a
 * socket (duplicate headers, bytes fetch refuses to send), the error envelope, and leak search.
 */

export const TOKEN_PREFIX = 'aisbreaker_';

/** The v2 content key, derived as design.md says: HKDF-SHA256 of the secret (see src/token/keyring.ts). */
export function contentKey(secret: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), 'aisbreaker-gateway', 'aisbreaker-gateway token v2 A256GCM content key', 32));
}

/** The kid the gateway puts in the header for a secret. */
export function keyId(secret: string): string {
  return Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), 'aisbreaker-gateway', 'aisbreaker-gateway token v2 key id', 9)).toString('base64url');
}

const b64u = (data: Buffer | string): string => Buffer.from(data).toString('base64url');

export interface RawJweOptions {
  /** compress the payload with raw DEFLATE (the JWE `zip: "DEF"` encoding) */
  deflate?: boolean;
  /** the second segment: empty for `dir` */
  encryptedKey?: Buffer;
}

/** A compact JWE with exactly this protected header, AES-256-GCM encrypted under `key` (32 bytes). */
export function rawJwe(header: Record<string, unknown>, payload: Buffer | string | object, key: Buffer, options: RawJweOptions = {}): string {
  const protectedB64 = b64u(JSON.stringify(header));
  let plaintext = Buffer.isBuffer(payload) ? payload : Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload), 'utf8');
  if (options.deflate) plaintext = deflateRawSync(plaintext);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(protectedB64, 'ascii'));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const tag = cipher.getAuthTag();
  return [protectedB64, b64u(options.encryptedKey ?? Buffer.alloc(0)), b64u(iv), b64u(ciphertext), b64u(tag)].join('.');
}

export interface ClaimsInput {
  host?: string;
  iatSeconds?: number;
  lifetimeSeconds?: number;
  jti?: string;
  requestQuotas?: Record<string, unknown>;
  serviceSecrets?: { serviceId: string; authSecret: string }[];
}

export function claimsFor(input: ClaimsInput = {}): Record<string, unknown> {
  const iat = input.iatSeconds ?? Math.floor(Date.now() / 1000);
  return {
    sub: `${input.host ?? '127.0.0.1'}#aisbreaker`,
    iat,
    exp: iat + (input.lifetimeSeconds ?? 3600),
    jti: input.jti ?? randomBytes(16).toString('base64url'),
    requestQuotas: input.requestQuotas ?? {},
    serviceSecrets: input.serviceSecrets ?? [],
  };
}

/** A v2 token made by hand for `secret`, with extra header fields (overriding alg/enc/kid too). */
export function handMadeToken(secret: string, claims: object, headerExtra: Record<string, unknown> = {}, options: RawJweOptions = {}): string {
  const header = { alg: 'dir', enc: 'A256GCM', kid: keyId(secret), ver: 'aisbreaker-gateway/jwt/v2', ...headerExtra };
  return TOKEN_PREFIX + rawJwe(header, claims, contentKey(secret), options);
}

/** An original AIsBreaker token: JWE dir + A128CBC-HS256 with key = sha256(keyphrase), no kid, no jti. */
export async function legacyToken(keyphrase: string, claims: Record<string, unknown>): Promise<string> {
  const key = new Uint8Array(createHash('sha256').update(keyphrase, 'utf8').digest());
  const { jti: _jti, ...withoutJti } = claims;
  const jwe = await new EncryptJWT(withoutJti).setProtectedHeader({ alg: 'dir', enc: 'A128CBC-HS256' }).encrypt(key);
  return TOKEN_PREFIX + jwe;
}

/** Flips one bit in the decoded bytes of JWE segment `index` (0-4) and re-encodes it canonically. */
export function flipSegmentBit(token: string, index: number, bit = 0): string {
  const segments = token.slice(TOKEN_PREFIX.length).split('.');
  const bytes = Buffer.from(segments[index] ?? '', 'base64url');
  if (bytes.length === 0) {
    // the encrypted-key segment of `dir` is empty: a flipped bit there is a byte that must not be
    segments[index] = b64u(Buffer.from([1 << (bit % 8)]));
  } else {
    const at = Math.floor(bit / 8) % bytes.length;
    bytes[at] = (bytes[at] ?? 0) ^ (1 << (bit % 8));
    segments[index] = b64u(bytes);
  }
  return TOKEN_PREFIX + segments.join('.');
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** the whole response as received */
  raw: string;
}

/**
 * Sends `request` as is over a fresh TCP connection and reads one response: complete when its
 * Content-Length (or last chunk) has arrived, or when the server closes the connection.
 */
export function rawHttp(port: number, request: string | Buffer, timeoutMs = 5000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let settled = false;
    const timer = setTimeout(() => finish(new Error(`no complete response within ${timeoutMs} ms`)), timeoutMs);
    const finish = (error?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) return reject(error);
      const parsed = parseResponse(Buffer.concat(chunks).toString('latin1'));
      if (parsed) resolve(parsed);
      else reject(new Error(`no HTTP response: ${JSON.stringify(Buffer.concat(chunks).toString('latin1').slice(0, 200))}`));
    };
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (isComplete(Buffer.concat(chunks).toString('latin1'))) finish();
    });
    socket.on('error', () => {
      // a reset after the response was written is how some refusals end; judge by what arrived
    });
    socket.on('close', () => finish());
    socket.write(request);
  });
}

function isComplete(raw: string): boolean {
  const headEnd = raw.indexOf('\r\n\r\n');
  if (headEnd < 0) return false;
  const head = raw.slice(0, headEnd).toLowerCase();
  const body = raw.slice(headEnd + 4);
  const length = /\r\ncontent-length: *(\d+)/.exec(head);
  if (length?.[1] !== undefined) return Buffer.byteLength(body, 'latin1') >= Number(length[1]);
  if (/\r\ntransfer-encoding: *chunked/.test(head)) return /(^|\r\n)0\r\n\r\n$/.test(body);
  return false;
}

function parseResponse(raw: string): RawResponse | undefined {
  const headEnd = raw.indexOf('\r\n\r\n');
  if (headEnd < 0) return undefined;
  const [statusLine = '', ...headerLines] = raw.slice(0, headEnd).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = raw.slice(headEnd + 4);
  if (headers['transfer-encoding'] === 'chunked') body = dechunk(body);
  return { status: Number(statusLine.split(' ')[1]), headers, body: Buffer.from(body, 'latin1').toString('utf8'), raw };
}

function dechunk(text: string): string {
  let out = '';
  let rest = text;
  for (;;) {
    const lineEnd = rest.indexOf('\r\n');
    if (lineEnd < 0) return out;
    const size = parseInt(rest.slice(0, lineEnd), 16);
    if (!(size > 0)) return out;
    out += rest.slice(lineEnd + 2, lineEnd + 2 + size);
    rest = rest.slice(lineEnd + 2 + size + 2);
  }
}

/**
 * An HTTP/1.1 request with `Connection: close`; header lines are sent as they are, one byte per
 * char (latin1, so any byte can be put in a header), the body as UTF-8.
 */
export function requestText(method: string, path: string, headerLines: string[], body: string | Buffer = '', host = '127.0.0.1'): Buffer {
  const bodyBytes = Buffer.isBuffer(body) ? body.length : Buffer.byteLength(body, 'utf8');
  const lines = [`${method} ${path} HTTP/1.1`, `Host: ${host}`, 'Connection: close', ...headerLines];
  if (method !== 'GET') lines.push(`Content-Length: ${bodyBytes}`);
  return Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1'), Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8')]);
}

export interface Envelope {
  success: false;
  error: { code: string; message: string; type: string; details?: Record<string, unknown> };
}

/** Asserts the error envelope with this status and code and returns it. */
export function expectError(status: number, bodyText: string, expectedStatus: number, code: string, label = ''): Envelope {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bodyText);
  } catch {
    throw new Error(`${label}: not JSON (status ${status}): ${bodyText.slice(0, 300)}`);
  }
  expect({ label, status, code: (parsed as Envelope).error?.code }).toEqual({ label, status: expectedStatus, code });
  const envelope = parsed as Envelope;
  expect(envelope.success).toBe(false);
  expect(typeof envelope.error.message).toBe('string');
  expect(typeof envelope.error.type).toBe('string');
  return envelope;
}

/** The needles (by label) that occur in any haystack; only needles of >= 8 chars are meaningful. */
export function findLeaks(haystacks: Iterable<string>, needles: Record<string, string>): string[] {
  const found = new Set<string>();
  const entries = Object.entries(needles).filter(([, value]) => value.length >= 8);
  for (const text of haystacks) {
    for (const [label, value] of entries) {
      if (text.includes(value) || text.includes(JSON.stringify(value).slice(1, -1))) found.add(label);
    }
  }
  return [...found];
}

/** Like findLeaks, with where each was found (40 chars either side), for a readable failure. */
export function whereLeaks(haystacks: Iterable<string>, needles: Record<string, string>): string[] {
  const found: string[] = [];
  const entries = Object.entries(needles).filter(([, value]) => value.length >= 8);
  for (const text of haystacks) {
    for (const [label, value] of entries) {
      const at = text.indexOf(value);
      if (at >= 0) found.push(`${label}: ...${text.slice(Math.max(0, at - 40), at)}[HERE]${text.slice(at + value.length, at + value.length + 40)}...`);
    }
  }
  return found;
}

/** fetch's Response -> status and text, for tables of cases. */
export async function statusAndText(res: Response): Promise<{ status: number; text: string }> {
  return { status: res.status, text: await res.text() };
}
