import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { ConfigError, MIN_SECRET_LENGTH, type Config } from './config.js';

/** A fresh server secret: 32 random bytes, base64url (43 chars). */
export function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * The secret that encrypts new tokens: AISBREAKER_SECRET, or one generated once and kept in
 * `<dataDir>/secret` (mode 0600) so tokens survive a restart of an unconfigured server.
 */
export function resolveServerSecret(config: Config, logger: Logger): string {
  if (config.secret !== undefined) return config.secret;
  const file = secretFileOf(config);
  const stored = readSecretFile(file);
  if (stored !== undefined) {
    logger.warn({ file }, 'AISBREAKER_SECRET is not set: using the generated secret stored in this file');
    return stored;
  }
  const secret = generateSecret();
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  // 'wx': never overwrite a secret another process wrote in the meantime
  try {
    writeFileSync(file, secret + '\n', { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return resolveServerSecret(config, logger);
    throw err;
  }
  chmodSync(file, 0o600);
  logger.warn({ file }, 'AISBREAKER_SECRET is not set: generated a new secret and stored it in this file; set AISBREAKER_SECRET in production');
  return secret;
}

/** Where the gateway keeps the secret it generates while AISBREAKER_SECRET is unset. */
export function secretFileOf(config: Config): string {
  return join(config.dataDir, 'secret');
}

/** The stored generated secret, or undefined when there is none; never creates one. */
export function readSecretFile(file: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  if (text.length < MIN_SECRET_LENGTH) {
    throw new ConfigError([`${file}: stored secret is too short (need >= ${MIN_SECRET_LENGTH} chars); delete the file to generate a new one`]);
  }
  return text;
}
