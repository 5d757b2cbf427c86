import { z } from 'zod/v4';

/**
 * What a credential may do: `inference` (every AI route), `analytics:read` (tokeninfo, the AI
 * DIAL limits endpoint, /metrics when protected), `admin` (minting for others, introspection,
 * revocation by jti). Tokens and operator keys carry them; a child token's are a subset.
 */
export const SCOPES = ['inference', 'analytics:read', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** A minted token that names none (and every token minted before scopes existed, and legacy tokens). */
export const DEFAULT_TOKEN_SCOPES: readonly Scope[] = ['inference', 'analytics:read'];
/** An operator key whose config entry names none. */
export const DEFAULT_KEY_SCOPES: readonly Scope[] = ['inference'];

export const scopesSchema = z
  .array(z.enum(SCOPES, { error: `must be one of ${SCOPES.join(', ')}` }), { error: 'must be an array of scopes' })
  .min(1, { error: `must name at least one of ${SCOPES.join(', ')}` })
  .max(SCOPES.length, { error: `at most ${SCOPES.length} scopes` })
  .refine((scopes) => new Set(scopes).size === scopes.length, { error: 'must not repeat a scope' });

/**
 * A credential's display name: shown in logs, audit lines, tokeninfo and the console, so plain
 * printable text only (no control characters that could forge a log line).
 */
const PRINTABLE = /^[^\p{Cc}\p{Cf}\p{Zl}\p{Zp}]*$/u;
export const MAX_NAME_LENGTH = 64;
export const MAX_DESCRIPTION_LENGTH = 256;
export const nameSchema = z
  .string({ error: 'must be a string' })
  .min(1, { error: 'must not be empty' })
  .max(MAX_NAME_LENGTH, { error: `must be at most ${MAX_NAME_LENGTH} chars` })
  .regex(PRINTABLE, { error: 'must be printable text (no control characters)' });
export const descriptionSchema = z
  .string({ error: 'must be a string' })
  .max(MAX_DESCRIPTION_LENGTH, { error: `must be at most ${MAX_DESCRIPTION_LENGTH} chars` })
  .regex(PRINTABLE, { error: 'must be printable text (no control characters)' });
