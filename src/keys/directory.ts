import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod/v4';
import { DEFAULT_KEY_SCOPES, descriptionSchema, nameSchema, scopesSchema, type Scope } from '../scopes.js';

/**
 * Operator API keys, AI DIAL style: `keys` map a key to a project and one or more roles, `roles`
 * map model names to limits. Keys may be written as `sha256:<hex>` so the config file holds no
 * usable secret; plain keys are hashed on load. Either way a presented key is found by its hash
 * and compared in constant time.
 */

const limit = z.int({ error: 'must be a positive integer' }).min(1, { error: 'must be a positive integer' }).max(1e15);

/** Per model: LLM tokens per minute/day/week/month, requests per minute/hour/day. Omitted = unlimited. */
export const modelLimitsSchema = z.strictObject({
  minute: limit.optional(),
  day: limit.optional(),
  week: limit.optional(),
  month: limit.optional(),
  requestMinute: limit.optional(),
  requestHour: limit.optional(),
  requestDay: limit.optional(),
});
export type ModelLimits = z.infer<typeof modelLimitsSchema>;
export const MODEL_LIMIT_FIELDS = Object.keys(modelLimitsSchema.shape) as (keyof ModelLimits)[];

const roleSchema = z.object({ limits: z.record(z.string().min(1).max(256), modelLimitsSchema, { error: 'must map model names to limits' }) });
const keyEntrySchema = z.object({
  project: z.string({ error: 'must name a project' }).min(1, { error: 'must name a project' }).max(256),
  role: z.string().min(1).optional(),
  roles: z.array(z.string().min(1)).min(1).optional(),
  name: nameSchema.optional(),
  description: descriptionSchema.optional(),
  scopes: scopesSchema.optional(),
  expiresAt: z
    .union([z.iso.datetime({ offset: true }), z.iso.date()], { error: 'must be an ISO 8601 date or date and time, e.g. "2027-01-31" or "2027-01-31T12:00:00Z"' })
    .optional(),
});

export const keysSectionSchema = z.object({
  keys: z.record(z.string(), z.unknown()).default({}),
  roles: z.record(z.string(), z.unknown()).default({}),
});

export interface OperatorKey {
  /** first 32 hex chars of the key's sha256: names its counters, never the key itself */
  id: string;
  project: string;
  roles: string[];
  /** model -> the most generous limits of all the key's roles that list it */
  models: Map<string, ModelLimits>;
  name?: string;
  description?: string;
  scopes: readonly Scope[];
  /** refused from then on (EXPIRED_API_KEY); undefined: never */
  expiresAtMs?: number;
}

const HASHED = /^sha256:([0-9a-f]{64})$/i;
export const MIN_PLAIN_KEY_LENGTH = 22;

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** How a key is named in messages: never the key, only a prefix of its hash. */
function keyLabel(configKey: string): string {
  const hashed = HASHED.exec(configKey);
  return `sha256:${(hashed?.[1] ?? sha256(configKey).toString('hex')).slice(0, 12).toLowerCase()}…`;
}

/** Per field: a role without the field is unlimited, so it wins; otherwise the highest number. */
function mostGenerous(a: ModelLimits, b: ModelLimits): ModelLimits {
  const merged: ModelLimits = {};
  for (const field of MODEL_LIMIT_FIELDS) {
    const x = a[field];
    const y = b[field];
    if (x !== undefined && y !== undefined) merged[field] = Math.max(x, y);
  }
  return merged;
}

export class KeyDirectory {
  private constructor(
    private readonly byHash: Map<string, { hash: Buffer; key: OperatorKey }>,
    /** warnings worth an operator's attention that do not make the config invalid */
    readonly warnings: string[],
  ) {}

  static empty(): KeyDirectory {
    return new KeyDirectory(new Map(), []);
  }

  /** Validates the `keys` and `roles` sections; returns every problem at once, one line each. */
  static parse(section: unknown): { directory: KeyDirectory } | { problems: string[] } {
    const parsed = keysSectionSchema.safeParse(section ?? {});
    if (!parsed.success) return { problems: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) };
    const problems: string[] = [];
    const roles = new Map<string, Map<string, ModelLimits>>();
    for (const [name, value] of Object.entries(parsed.data.roles)) {
      const role = roleSchema.safeParse(value);
      if (!role.success) {
        for (const issue of role.error.issues) problems.push(`roles.${name}.${issue.path.join('.')}: ${issue.message}`);
        continue;
      }
      roles.set(name, new Map(Object.entries(role.data.limits)));
    }

    const byHash = new Map<string, { hash: Buffer; key: OperatorKey }>();
    const warnings: string[] = [];
    for (const [configKey, value] of Object.entries(parsed.data.keys)) {
      const label = `keys[${keyLabel(configKey)}]`;
      const entry = keyEntrySchema.safeParse(value);
      if (!entry.success) {
        for (const issue of entry.error.issues) problems.push(`${label}.${issue.path.join('.') || '(entry)'}: ${issue.message}`);
        continue;
      }
      const roleNames = [...(entry.data.role ? [entry.data.role] : []), ...(entry.data.roles ?? [])];
      if (roleNames.length === 0) problems.push(`${label}: must name a role ("role" or "roles")`);
      const missing = roleNames.filter((r) => !roles.has(r));
      for (const r of missing) problems.push(`${label}: role "${r}" does not exist in "roles"`);
      if (missing.length > 0 || roleNames.length === 0) continue;

      const hashed = HASHED.exec(configKey);
      if (!hashed && configKey.length < MIN_PLAIN_KEY_LENGTH) {
        warnings.push(`${label}: shorter than ${MIN_PLAIN_KEY_LENGTH} chars; use "aisbreaker-gateway gen-key" for a key with 128+ random bits`);
      }
      const hash = hashed?.[1] ? Buffer.from(hashed[1], 'hex') : sha256(configKey);
      const models = new Map<string, ModelLimits>();
      for (const roleName of roleNames) {
        for (const [model, limits] of roles.get(roleName) ?? []) {
          const known = models.get(model);
          models.set(model, known ? mostGenerous(known, limits) : limits);
        }
      }
      const hex = hash.toString('hex');
      if (byHash.has(hex)) problems.push(`${label}: the same key is defined twice`);
      const { name, description, scopes, expiresAt } = entry.data;
      const key: OperatorKey = { id: hex.slice(0, 32), project: entry.data.project, roles: roleNames, models, scopes: scopes ?? DEFAULT_KEY_SCOPES };
      if (name !== undefined) key.name = name;
      if (description !== undefined) key.description = description;
      // a date alone means its start in UTC, as Date.parse reads it
      if (expiresAt !== undefined) key.expiresAtMs = Date.parse(expiresAt);
      byHash.set(hex, { hash, key });
    }
    return problems.length > 0 ? { problems } : { directory: new KeyDirectory(byHash, warnings) };
  }

  get size(): number {
    return this.byHash.size;
  }

  keys(): OperatorKey[] {
    return [...this.byHash.values()].map((entry) => entry.key);
  }

  /** Whether some key may act as an admin: then minting needs an admin credential, as with AISBREAKER_ADMIN_KEY. */
  get hasAdminKeys(): boolean {
    return this.keys().some((key) => key.scopes.includes('admin'));
  }

  /** The operator key a presented credential is, if any. */
  find(presented: string): OperatorKey | undefined {
    const hash = sha256(presented);
    const entry = this.byHash.get(hash.toString('hex'));
    // the map lookup already matched the hash; the constant-time compare keeps it so if it ever changes
    return entry && timingSafeEqual(entry.hash, hash) ? entry.key : undefined;
  }
}

/**
 * A requested model as role entries may name it: its full serviceId ("chat:azure/gpt-4o"), its
 * service ("chat:azure"), and, for a model of the default service, its bare name ("gpt-4o").
 */
export interface RequestedModel {
  serviceId: string;
  prefix: string;
  bareModel?: string;
}

/**
 * The limits of `key` for a requested model, or undefined when its roles do not list it. A role
 * entry grants exactly what it names: `<serviceId>/<model>` that model, a service id that service,
 * a bare model name that model of the default service. The most specific entry's limits count.
 */
export function limitsForModel(key: OperatorKey, model: RequestedModel): { name: string; limits: ModelLimits } | undefined {
  for (const name of [model.serviceId, model.bareModel, model.prefix]) {
    const limits = name === undefined ? undefined : key.models.get(name);
    if (name !== undefined && limits) return { name, limits };
  }
  return undefined;
}

/** A new operator key (192 random bits, base64url) and the hashed form for the config file. */
export function generateKey(): { key: string; hashed: string } {
  const key = 'aisbk_' + randomBytes(24).toString('base64url');
  return { key, hashed: `sha256:${sha256(key).toString('hex')}` };
}

/** Whether `key` is past its expiresAt: refused from then on. */
export function keyExpired(key: OperatorKey, nowMs: number): boolean {
  return key.expiresAtMs !== undefined && key.expiresAtMs <= nowMs;
}

/** How an operator key is named in logs and audit lines: its id's head, its name, its project (never the key). */
export interface KeyRef {
  id: string;
  name?: string;
  project: string;
}

function refOf(key: OperatorKey): KeyRef {
  return { id: `sha256:${key.id.slice(0, 12)}`, ...(key.name !== undefined ? { name: key.name } : {}), project: key.project };
}

/** Everything a key grants, comparable between two loads of the config. */
function grantOf(key: OperatorKey): string {
  return JSON.stringify([key.project, key.roles, key.scopes, key.name, key.description, key.expiresAtMs, [...key.models]]);
}

/** What a config reload changed about operator keys: added, removed, and those whose roles, limits, scopes or expiry changed. */
export function keyChanges(previous: KeyDirectory, next: KeyDirectory): { added: KeyRef[]; removed: KeyRef[]; changed: KeyRef[] } {
  const before = new Map(previous.keys().map((key) => [key.id, key]));
  const after = new Map(next.keys().map((key) => [key.id, key]));
  const added = next.keys().filter((key) => !before.has(key.id));
  const removed = previous.keys().filter((key) => !after.has(key.id));
  const changed = next.keys().filter((key) => {
    const old = before.get(key.id);
    return old !== undefined && grantOf(old) !== grantOf(key);
  });
  return { added: added.map(refOf), removed: removed.map(refOf), changed: changed.map(refOf) };
}

/** Keys that expire within `noticeMs` of `nowMs`, or have expired: each worth a warning. */
export function expiringKeys(directory: KeyDirectory, nowMs: number, noticeMs: number): { key: KeyRef; expiresAt: string; expired: boolean }[] {
  return directory
    .keys()
    .filter((key) => key.expiresAtMs !== undefined && key.expiresAtMs - nowMs <= noticeMs)
    .map((key) => ({ key: refOf(key), expiresAt: new Date(key.expiresAtMs as number).toISOString(), expired: keyExpired(key, nowMs) }));
}
