import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig } from '../../src/config.js';

/** Reading the repository's deployment recipes the way docker, compose, kubectl and systemd read them. */

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export function repoFile(path: string): string {
  return readFileSync(join(ROOT, path), 'utf8');
}

/**
 * Every environment variable the gateway reads: found in its sources (`env.NAME`,
 * `process.env.NAME`), so a setting added later is known here without a list to keep, plus the
 * standard `OTEL_*` ones and Node's own NODE_ENV.
 */
export function knownSettings(): Set<string> {
  const names = new Set<string>(['NODE_ENV']);
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts')) for (const m of readFileSync(path, 'utf8').matchAll(/\benv\.([A-Z][A-Z0-9_]+)/g)) names.add(m[1] ?? '');
    }
  };
  walk(join(ROOT, 'src'));
  return names;
}

export function isKnownSetting(name: string, known: Set<string>): boolean {
  return known.has(name) || name.startsWith('OTEL_');
}

/** The problems the gateway's start would report for these settings (none: []). */
export function settingsProblems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

export interface DockerInstruction {
  keyword: string;
  /** the rest of the line, continuation lines joined */
  args: string;
}

/** A Dockerfile's instructions, comments dropped and `\` continuations joined. */
export function dockerInstructions(text: string): DockerInstruction[] {
  const logical = text
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
    .replace(/\\\n/g, ' ');
  return logical
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
    .map((line) => {
      const [keyword = '', ...rest] = line.split(/\s+/);
      return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    });
}

/** `ENV A=1 B=2` (the key=value form) -> entries. */
export function dockerEnv(args: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const m of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S*)/g)) env[m[1] ?? ''] = (m[2] ?? '').replace(/^"|"$/g, '');
  return env;
}

/** A systemd unit's `[Service]` keys; repeated keys keep every value, in order. */
export function unitService(text: string): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || line === '') continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1] ?? '';
      continue;
    }
    const at = line.indexOf('=');
    if (section !== 'Service' || at < 0) continue;
    const key = line.slice(0, at);
    keys.set(key, [...(keys.get(key) ?? []), line.slice(at + 1)]);
  }
  return keys;
}

/** compose's `${NAME:?message}` and `${NAME:-default}` against `vars`; a missing required one throws, as compose refuses. */
export function interpolateCompose(text: string, vars: Record<string, string>): string {
  return text.replace(/\$\{([A-Z0-9_]+)(?::([?-])([^}]*))?\}/g, (_all, name: string, kind: string | undefined, rest: string | undefined) => {
    const value = vars[name];
    if (value !== undefined && value !== '') return value;
    if (kind === '?') throw new Error(`required variable ${name} is missing a value: ${rest ?? ''}`);
    return kind === '-' ? (rest ?? '') : '';
  });
}
