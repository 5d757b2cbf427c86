import { createHash, hkdfSync } from 'node:crypto';
import { compactDecrypt, jwtDecrypt } from 'jose';
import { describe, expect, it } from 'vitest';
import { MAX_TOKEN_LENGTH, TokenError, mintToken, openToken, type MintInput } from '../../src/token/codec.js';
import { Keyring } from '../../src/token/keyring.js';
import { TokenVerifier } from '../../src/token/verifier.js';

const SECRET = 'format-test-secret-0123456789-abcdefghijklmnop';
const NOW = Date.UTC(2030, 0, 1);

const INPUT: MintInput = {
  host: 'api.example.com',
  requestQuotas: { globalRequestLimits: { requestsPerMinute: 5 } },
  serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: 'sk-format-test-0000' }],
  lifetimeSeconds: 3600,
};

/** The content key as design.md describes it, derived here independently of src/: HKDF-SHA256 of the secret. */
function hkdfContentKey(secret: string): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', Buffer.from(secret, 'utf8'), 'aisbreaker-gateway', 'aisbreaker-gateway token v2 A256GCM content key', 32));
}

function jweOf(token: string): string {
  return token.slice('aisbreaker_'.length);
}

describe('token format v2', () => {
  it('is a JWE dir/A256GCM whose content key is HKDF-SHA256 of the secret, never a bare hash of it', async () => {
    const keyring = new Keyring(SECRET);
    const { token, claims } = await mintToken(INPUT, keyring, NOW);
    const { payload, protectedHeader } = await jwtDecrypt(jweOf(token), hkdfContentKey(SECRET), { currentDate: new Date(NOW) });
    expect(protectedHeader).toMatchObject({ alg: 'dir', enc: 'A256GCM', kid: keyring.current.kid });
    expect(typeof protectedHeader.ver).toBe('string');
    expect(payload).toEqual(claims);
    expect(payload).toMatchObject({ sub: 'api.example.com#aisbreaker', iat: NOW / 1000, exp: NOW / 1000 + 3600, requestQuotas: INPUT.requestQuotas, serviceSecrets: INPUT.serviceSecrets });
    expect(Buffer.from(claims.jti, 'base64url')).toHaveLength(16);
    // neither sha256(secret) nor the raw secret bytes open it
    await expect(compactDecrypt(jweOf(token), new Uint8Array(createHash('sha256').update(SECRET).digest()))).rejects.toThrow();
    await expect(compactDecrypt(jweOf(token), new Uint8Array(Buffer.from(SECRET).subarray(0, 32)))).rejects.toThrow();
  });

  it('names the secret by a kid that is stable per secret, differs between secrets, and reveals neither', () => {
    const a = new Keyring(SECRET).current.kid;
    expect(new Keyring(SECRET).current.kid).toBe(a);
    expect(new Keyring(SECRET + 'x').current.kid).not.toBe(a);
    expect(a).not.toContain(SECRET.slice(0, 8));
    expect(a).not.toBe(createHash('sha256').update(SECRET).digest('base64url').slice(0, a.length));
  });

  it('gives each token a fresh 128-bit jti and iv, even for identical input', async () => {
    const keyring = new Keyring(SECRET);
    const minted = await Promise.all(Array.from({ length: 50 }, () => mintToken(INPUT, keyring, NOW)));
    expect(new Set(minted.map((m) => m.claims.jti)).size).toBe(50);
    expect(new Set(minted.map((m) => jweOf(m.token).split('.')[2])).size).toBe(50);
  });

  it('opens tokens of the current and of previous secrets, not of unknown ones', async () => {
    const old = await mintToken(INPUT, new Keyring('old-secret-0123456789-abcdefghijklmnopqrstu'), NOW);
    const rotated = new Keyring(SECRET, ['old-secret-0123456789-abcdefghijklmnopqrstu']);
    expect((await openToken(old.token, rotated, NOW)).claims.jti).toBe(old.claims.jti);
    await expect(openToken(old.token, new Keyring(SECRET), NOW)).rejects.toThrow(TokenError);
    // new tokens use the current secret
    const fresh = await mintToken(INPUT, rotated, NOW);
    expect((await openToken(fresh.token, new Keyring(SECRET), NOW)).claims.jti).toBe(fresh.claims.jti);
  });

  it('reports expiry only for authentic tokens', async () => {
    const keyring = new Keyring(SECRET);
    const { token } = await mintToken(INPUT, keyring, NOW);
    const later = NOW + 3600 * 1000;
    await expect(openToken(token, keyring, later)).rejects.toMatchObject({ failure: 'expired' });
    const parts = jweOf(token).split('.');
    parts[3] = (parts[3]?.[0] === 'A' ? 'B' : 'A') + (parts[3] ?? '').slice(1);
    await expect(openToken('aisbreaker_' + parts.join('.'), keyring, later)).rejects.toMatchObject({ failure: 'invalid' });
    await expect(openToken('aisbreaker_' + 'A'.repeat(MAX_TOKEN_LENGTH), keyring, NOW)).rejects.toMatchObject({ failure: 'invalid' });
  });
});

describe('TokenVerifier cache', () => {
  it('never lets an altered copy of a cached token through, and re-checks expiry on every hit', async () => {
    let now = NOW;
    const keyring = new Keyring(SECRET);
    const verifier = new TokenVerifier(keyring, () => now, 2);
    const { token, claims } = await mintToken(INPUT, keyring, NOW);
    expect((await verifier.open(token)).claims.jti).toBe(claims.jti);
    expect((await verifier.open(token)).claims.jti).toBe(claims.jti);
    await expect(verifier.open(token.slice(0, -2) + (token.endsWith('AA') ? 'BB' : 'AA'))).rejects.toThrow(TokenError);
    // bounded: a third distinct token evicts the oldest
    await verifier.open((await mintToken(INPUT, keyring, NOW)).token);
    await verifier.open((await mintToken(INPUT, keyring, NOW)).token);
    expect(verifier.cachedCount).toBe(2);
    now = NOW + 3600 * 1000;
    await expect(verifier.open(token)).rejects.toMatchObject({ failure: 'expired' });
  });
});
