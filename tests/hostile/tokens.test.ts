import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mint, processBody, startGateway, TEST_SECRET, type TestGateway } from '../helpers/gateway.js';
import {
  claimsFor,
  expectError,
  findLeaks,
  flipSegmentBit,
  handMadeToken,
  legacyToken,
  rawHttp,
  requestText,
  TOKEN_PREFIX,
  type RawResponse,
} from '../helpers/hostile.js';

/**
 * The token catalogue: every kind of bad token, each with the status and code it must get, on
 * the serving paths (/api/v1/process, /v1/chat/completions) and on tokeninfo. After each case a good token still works
 * (nothing was lost), and the case's token text is in no log line and no response (nothing leaked).
 */

const OLD_SECRET = 'previous-secret-0123456789-abcdefghijklmnopqrstuvw';
const LEGACY_PHRASE = 'legacy-aisbreaker-keyphrase-0123456789';
const SERVICE_SECRET = 'sk-hostile-tokens-' + randomBytes(12).toString('hex');

type GatewayName = 'main' | 'rotated' | 'legacy';

interface TokenCase {
  name: string;
  /** the credential sent as `Authorization: Bearer <token>` (latin1 bytes, sent raw) */
  token: () => Promise<string> | string;
  status: number;
  code: string | undefined;
  /** main: previous secret configured; rotated: previous secret removed; legacy: legacy keyphrase configured */
  on?: GatewayName;
}

/** Replaces the last char of a segment with another that decodes to the same bytes (unused low bits). */
function sameBytesOtherChar(token: string, index: number): string {
  const other = trySameBytesOtherChar(token, index);
  if (other === undefined) throw new Error(`segment ${index} has no slack bits`);
  return other;
}

function trySameBytesOtherChar(token: string, index: number): string | undefined {
  const segments = token.slice(TOKEN_PREFIX.length).split('.');
  const segment = segments[index] ?? '';
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const decoded = Buffer.from(segment, 'base64url');
  for (const c of alphabet) {
    const candidate = segment.slice(0, -1) + c;
    if (candidate !== segment && Buffer.from(candidate, 'base64url').equals(decoded)) {
      segments[index] = candidate;
      return TOKEN_PREFIX + segments.join('.');
    }
  }
  return undefined;
}

describe('hostile tokens: a catalogue of bad tokens, each refused with its status and code', () => {
  const gateways = {} as Record<GatewayName, TestGateway>;
  const good = {} as Record<GatewayName, string>;
  const bodies: string[] = [];

  beforeAll(async () => {
    [gateways.main, gateways.rotated, gateways.legacy] = await Promise.all([
      startGateway({ AISBREAKER_PREVIOUS_SECRETS: OLD_SECRET }),
      startGateway(),
      startGateway({ AISBREAKER_LEGACY_KEYPHRASES: LEGACY_PHRASE }),
    ]);
    for (const name of ['main', 'rotated', 'legacy'] as const) {
      good[name] = await mint(gateways[name].url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: SERVICE_SECRET }] } });
    }
  });
  afterAll(async () => {
    await Promise.all(Object.values(gateways).map((gw) => gw.close()));
  });

  const now = (): number => Math.floor(Date.now() / 1000);
  const hand = (headerExtra: Record<string, unknown> = {}, claims = claimsFor()): string => handMadeToken(TEST_SECRET, claims, headerExtra);
  /** a hand-made, correctly encrypted token whose whole length is `length` chars (padded in the header) */
  const paddedTo = (length: number): string => {
    const probe = hand({ pad: '' });
    // the pad is base64url-encoded inside the header: 3 chars of pad become 4 chars of token
    const padChars = Math.floor(((length - probe.length) * 3) / 4);
    let token = hand({ pad: 'p'.repeat(padChars) });
    for (let extra = 1; token.length < length; extra++) token = hand({ pad: 'p'.repeat(padChars + extra) });
    return token;
  };

  const cases: TokenCase[] = [
    // positive controls: the hand-made tokens below are refused for their one defect, not for being hand-made
    { name: 'control: a hand-made token with the right header', token: () => hand(), status: 200, code: undefined },
    { name: 'control: a token of the previous secret while it is configured', token: () => handMadeToken(OLD_SECRET, claimsFor()), status: 200, code: undefined },
    { name: 'control: a legacy token in legacy mode', token: () => legacyToken(LEGACY_PHRASE, claimsFor()), status: 200, code: undefined, on: 'legacy' },
    { name: 'control: an authentic token of 8150 chars (header padded)', token: () => paddedTo(8150), status: 200, code: undefined },

    { name: 'random base64url after the prefix', token: () => TOKEN_PREFIX + randomBytes(400).toString('base64url'), status: 401, code: 'INVALID_API_KEY' },
    { name: 'random printable bytes without the prefix', token: () => randomBytes(200).toString('base64'), status: 401, code: 'INVALID_API_KEY' },
    {
      name: 'random binary bytes (latin1, no CR/LF/NUL/space)',
      token: () => TOKEN_PREFIX + Buffer.from([...randomBytes(300)].map((b) => (b <= 0x20 || b === 0x7f ? 0x41 : b))).toString('latin1'),
      status: 401,
      code: 'INVALID_API_KEY',
    },
    { name: 'the prefix alone', token: () => TOKEN_PREFIX, status: 401, code: 'INVALID_API_KEY' },
    { name: 'the prefix in capitals', token: () => 'AISBREAKER_' + good.main.slice(TOKEN_PREFIX.length), status: 401, code: 'INVALID_API_KEY' },
    { name: 'truncated to half', token: () => good.main.slice(0, Math.floor(good.main.length / 2)), status: 401, code: 'INVALID_API_KEY' },
    { name: 'truncated by one char', token: () => good.main.slice(0, -1), status: 401, code: 'INVALID_API_KEY' },
    { name: 'one char appended', token: () => good.main + 'A', status: 401, code: 'INVALID_API_KEY' },
    { name: 'base64 padding appended to the tag', token: () => good.main + '==', status: 401, code: 'INVALID_API_KEY' },
    { name: 'four segments', token: () => good.main.split('.').slice(0, 4).join('.'), status: 401, code: 'INVALID_API_KEY' },
    { name: 'six segments', token: () => good.main + '.AAAA', status: 401, code: 'INVALID_API_KEY' },
    { name: 'empty segments', token: () => TOKEN_PREFIX + '....', status: 401, code: 'INVALID_API_KEY' },
    ...[0, 1, 2, 3, 4].map((segment) => ({
      name: `segment ${segment + 1} of 5 bit-flipped`,
      token: () => flipSegmentBit(good.main, segment, 3),
      status: 401,
      code: 'INVALID_API_KEY',
    })),
    { name: 'tag re-encoded with other unused low bits (same bytes)', token: () => sameBytesOtherChar(good.main, 4), status: 401, code: 'INVALID_API_KEY' },
    { name: 'ciphertext re-encoded with other unused low bits', token: () => {
        // a jti length whose ciphertext does not fill its last base64url char
        for (let length = 16; ; length++) {
          const other = trySameBytesOtherChar(hand({}, claimsFor({ jti: 'a'.repeat(length) })), 3);
          if (other !== undefined) return other;
        }
      }, status: 401, code: 'INVALID_API_KEY' },
    { name: 'alg: none (correctly encrypted otherwise)', token: () => hand({ alg: 'none' }), status: 401, code: 'INVALID_API_KEY' },
    { name: 'alg: A256KW', token: () => hand({ alg: 'A256KW' }), status: 401, code: 'INVALID_API_KEY' },
    { name: 'alg: RSA-OAEP-256', token: () => hand({ alg: 'RSA-OAEP-256' }), status: 401, code: 'INVALID_API_KEY' },
    { name: 'alg: PBES2 with 2^31 iterations (a CPU bomb if honoured)', token: () => hand({ alg: 'PBES2-HS512+A256KW', p2c: 2 ** 31 - 1, p2s: 'AAAAAAAAAAAAAAAAAAAAAA' }), status: 401, code: 'INVALID_API_KEY' },
    { name: 'alg missing', token: () => hand({ alg: undefined }), status: 401, code: 'INVALID_API_KEY' },
    { name: 'enc: A128GCM', token: () => hand({ enc: 'A128GCM' }), status: 401, code: 'INVALID_API_KEY' },
    { name: 'enc: A256CBC-HS512', token: () => hand({ enc: 'A256CBC-HS512' }), status: 401, code: 'INVALID_API_KEY' },
    { name: 'enc: A128CBC-HS256 with a kid', token: () => hand({ enc: 'A128CBC-HS256' }), status: 401, code: 'INVALID_API_KEY' },
    { name: 'enc: none', token: () => hand({ enc: 'none' }), status: 401, code: 'INVALID_API_KEY' },
    { name: 'zip: DEF (deflated payload, correctly encrypted)', token: () => handMadeToken(TEST_SECRET, claimsFor(), { zip: 'DEF' }, { deflate: true }), status: 401, code: 'INVALID_API_KEY' },
    {
      name: 'zip: DEF bomb (10 MB of zeros deflated)',
      token: () => handMadeToken(TEST_SECRET, Buffer.alloc(10_000_000, 0x20), { zip: 'DEF' }, { deflate: true }),
      status: 401,
      code: 'INVALID_API_KEY',
    },
    { name: 'crit: an unknown critical header', token: () => hand({ crit: ['x-must-know'], 'x-must-know': 1 }), status: 401, code: 'INVALID_API_KEY' },
    { name: 'kid of no known secret', token: () => hand({ kid: 'AAAAAAAAAAAA' }), status: 401, code: 'INVALID_API_KEY' },
    { name: 'kid missing', token: () => hand({ kid: undefined }), status: 401, code: 'INVALID_API_KEY' },
    { name: 'kid a number', token: () => hand({ kid: 12 }), status: 401, code: 'INVALID_API_KEY' },
    { name: 'a non-empty encrypted-key segment with dir', token: () => handMadeToken(TEST_SECRET, claimsFor(), {}, { encryptedKey: randomBytes(32) }), status: 401, code: 'INVALID_API_KEY' },
    { name: 'header not JSON', token: () => TOKEN_PREFIX + [Buffer.from('not json').toString('base64url'), ...good.main.split('.').slice(1)].join('.'), status: 401, code: 'INVALID_API_KEY' },
    { name: 'payload not JSON (authentic)', token: () => handMadeToken(TEST_SECRET, Buffer.from('not json')), status: 401, code: 'INVALID_API_KEY' },
    { name: 'payload a JSON array (authentic)', token: () => handMadeToken(TEST_SECRET, Buffer.from('[1,2]')), status: 401, code: 'INVALID_API_KEY' },
    { name: 'claims without jti (authentic)', token: () => hand({}, { ...claimsFor(), jti: undefined }), status: 401, code: 'INVALID_API_KEY' },
    { name: 'claims with a subject lacking #aisbreaker (authentic)', token: () => hand({}, { ...claimsFor(), sub: '127.0.0.1' }), status: 401, code: 'INVALID_API_KEY' },
    { name: 'claims with a string exp (authentic)', token: () => hand({}, { ...claimsFor(), exp: String(now() + 3600) }), status: 401, code: 'INVALID_API_KEY' },
    { name: 'claims with a negative limit (authentic)', token: () => hand({}, claimsFor({ requestQuotas: { globalRequestLimits: { requestsPerMinute: -1 } } })), status: 401, code: 'INVALID_API_KEY' },
    { name: 'claims with 17 service secrets (authentic)', token: () => hand({}, claimsFor({ serviceSecrets: Array.from({ length: 17 }, (_, i) => ({ serviceId: `s${i}`, authSecret: 'x' })) })), status: 401, code: 'INVALID_API_KEY' },
    { name: 'header padded to 8300 chars (authentic, over the 8192 limit)', token: () => paddedTo(8300), status: 401, code: 'INVALID_API_KEY' },
    { name: 'garbage header of 9500 chars', token: () => TOKEN_PREFIX + 'e'.repeat(9500) + '..AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA', status: 401, code: 'INVALID_API_KEY' },
    { name: 'a credential of 12000 chars', token: () => TOKEN_PREFIX + 'A'.repeat(12_000), status: 401, code: 'INVALID_API_KEY' },
    { name: 'minted for another host', token: () => hand({}, claimsFor({ host: 'evil.example' })), status: 401, code: 'WRONG_HOST' },
    { name: 'minted for the same host with a port', token: () => hand({}, claimsFor({ host: '127.0.0.1:80' })), status: 401, code: 'WRONG_HOST' },
    { name: 'expired an hour ago', token: () => hand({}, claimsFor({ iatSeconds: now() - 7200, lifetimeSeconds: 3600 })), status: 401, code: 'EXPIRED_API_KEY' },
    { name: 'expired and tampered: only "invalid" is told', token: () => flipSegmentBit(hand({}, claimsFor({ iatSeconds: now() - 7200, lifetimeSeconds: 3600 })), 3, 9), status: 401, code: 'INVALID_API_KEY' },
    { name: 'made with a previous secret after it was removed', token: () => handMadeToken(OLD_SECRET, claimsFor()), status: 401, code: 'INVALID_API_KEY', on: 'rotated' },
    { name: 'a legacy token without legacy mode', token: () => legacyToken(LEGACY_PHRASE, claimsFor()), status: 401, code: 'INVALID_API_KEY' },
    { name: 'a legacy token of another keyphrase in legacy mode', token: () => legacyToken('another-keyphrase-0123456789abcdef', claimsFor()), status: 401, code: 'INVALID_API_KEY', on: 'legacy' },
    { name: 'a legacy token, expired', token: () => legacyToken(LEGACY_PHRASE, claimsFor({ iatSeconds: now() - 7200, lifetimeSeconds: 60 })), status: 401, code: 'EXPIRED_API_KEY', on: 'legacy' },
    {
      name: 'a legacy token re-encoded with other unused low bits (would be a new jti: fresh quota, revocation dodged)',
      token: async () => sameBytesOtherChar(await legacyToken(LEGACY_PHRASE, claimsFor()), 4),
      status: 401,
      code: 'INVALID_API_KEY',
      on: 'legacy',
    },
  ];

  async function send(gw: TestGateway, path: string, method: 'GET' | 'POST', token: string): Promise<RawResponse> {
    const headers = [`Authorization: Bearer ${token}`];
    const body =
      path === '/v1/chat/completions'
        ? JSON.stringify({ model: 'chat:dummy/any', messages: [{ role: 'user', content: 'hi' }] })
        : method === 'POST'
          ? processBody('chat:dummy', 'hi')
          : '';
    if (method === 'POST') headers.push('Content-Type: application/json');
    const started = Date.now();
    const res = await rawHttp(gw.port, requestText(method, path, headers, body));
    // nothing in the catalogue may cost real work: no PBES2 iterations, no inflating
    expect(Date.now() - started).toBeLessThan(3000);
    bodies.push(res.body);
    return res;
  }

  it.each(cases)('$name -> $status $code', async (c) => {
    const gw = gateways[c.on ?? 'main'];
    const token = await c.token();
    const logsBefore = gw.logs.length;
    for (const [path, method] of [
      ['/api/v1/process', 'POST'],
      ['/api/v1/oauth/tokeninfo', 'GET'],
      ['/v1/chat/completions', 'POST'],
    ] as const) {
      const res = await send(gw, path, method, token);
      if (c.code === undefined) expect({ path, status: res.status, body: res.body.slice(0, 200) }).toMatchObject({ path, status: c.status });
      else {
        const envelope = expectError(res.status, res.body, c.status, c.code, `${c.name} on ${path}`);
        // the message says what is wrong without quoting the token
        expect(envelope.error.message.length).toBeLessThan(200);
      }
      // nothing leaked: neither the token nor 24 chars of its end (the header part is shared by all tokens), nor the service secret
      const leaks = findLeaks([res.raw, ...gw.logs.slice(logsBefore)], {
        token: token.length >= 16 ? token : '',
        tokenEnd: token.length >= 60 ? token.slice(-40, -16) : '',
        serviceSecret: SERVICE_SECRET,
      });
      expect({ case: c.name, path, leaks }).toEqual({ case: c.name, path, leaks: [] });
    }
    // nothing lost: the gateway still serves a good token right after
    const after = await send(gw, '/api/v1/process', 'POST', good[c.on ?? 'main']);
    expect(after.status).toBe(200);
    expect(JSON.parse(after.body)).toMatchObject({ outputs: [{ text: { role: 'assistant' } }] });
  });

  it('no response body of the catalogue names the good tokens or their secret', () => {
    expect(findLeaks(bodies, { ...good, SERVICE_SECRET })).toEqual([]);
  });

  it('a good token minted on another host over HTTP (Host: evil.example) is refused here with WRONG_HOST', async () => {
    const minted = await rawHttp(
      gateways.main.port,
      requestText('POST', '/api/v1/oauth/token', ['Content-Type: application/json'], JSON.stringify({ requestAuthAndQuotas: {} }), 'evil.example'),
    );
    expect(minted.status).toBe(200);
    const token = (JSON.parse(minted.body) as { access_token: string }).access_token;
    const res = await send(gateways.main, '/api/v1/process', 'POST', token);
    expectError(res.status, res.body, 401, 'WRONG_HOST');
  });
});
