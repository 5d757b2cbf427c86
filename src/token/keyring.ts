import { createHash, hkdfSync, webcrypto } from 'node:crypto';

/**
 * Which keys encrypt and decrypt tokens.
 *
 * v2 tokens: the A256GCM content key is HKDF-SHA256(secret); the `kid` header is another HKDF
 * output of the same secret, so it names the secret without revealing anything about it.
 * Legacy AIsBreaker tokens: key = sha256(keyphrase), as that server did (A128CBC-HS256 needs 32 bytes).
 */

const HKDF_SALT = 'aisbreaker-gateway';
const CONTENT_KEY_INFO = 'aisbreaker-gateway token v2 A256GCM content key';
const KID_INFO = 'aisbreaker-gateway token v2 key id';

export interface TokenKey {
  kid: string;
  /** imported once: importing per token would cost a third of each decryption */
  key: Promise<webcrypto.CryptoKey>;
}

function hkdf(secret: string, info: string, length: number): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', Buffer.from(secret, 'utf8'), HKDF_SALT, info, length));
}

export function deriveTokenKey(secret: string): TokenKey {
  return {
    kid: Buffer.from(hkdf(secret, KID_INFO, 9)).toString('base64url'),
    key: webcrypto.subtle.importKey('raw', hkdf(secret, CONTENT_KEY_INFO, 32), 'AES-GCM', false, ['encrypt', 'decrypt']),
  };
}

export function legacyKeyFromKeyphrase(keyphrase: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(keyphrase, 'utf8').digest());
}

export class Keyring {
  readonly current: TokenKey;
  private readonly byKid: Map<string, TokenKey>;
  readonly legacyKeys: readonly Uint8Array[];

  constructor(currentSecret: string, previousSecrets: readonly string[] = [], legacyKeyphrases: readonly string[] = []) {
    this.current = deriveTokenKey(currentSecret);
    this.byKid = new Map([this.current, ...previousSecrets.map(deriveTokenKey)].map((k) => [k.kid, k]));
    this.legacyKeys = legacyKeyphrases.map(legacyKeyFromKeyphrase);
  }

  keyFor(kid: string): TokenKey | undefined {
    return this.byKid.get(kid);
  }
}
