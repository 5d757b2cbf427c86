import { readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import { ConfigError } from './config.js';

/**
 * The JSON config file (AISBREAKER_CONFIG): one object whose sections (services, keys, roles,
 * ...) are each validated by their owner. A file is taken whole or not at all: at start an
 * invalid file stops the server with one line per problem; on a later change it is reloaded,
 * and an invalid edit is logged and ignored, so the last good config keeps running.
 */

/** Validates its part of the file; `apply` makes it current (called only when every section is valid). */
export type ConfigSection = (file: Record<string, unknown>) => { problems: string[] } | { apply(): void; warnings?: string[] };

export const MAX_CONFIG_FILE_BYTES = 4 * 1024 * 1024;
const RELOAD_DEBOUNCE_MS = 100;

export class ReloadingConfigFile {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastText: string | undefined;

  constructor(
    readonly path: string,
    private readonly sections: ConfigSection[],
    private readonly logger: Logger,
  ) {}

  /** Loads the file or throws a ConfigError listing every problem. */
  load(): void {
    const text = readConfigText(this.path);
    this.applyText(text);
  }

  /** Reloads on every change of the file (editors that replace the file included). */
  watch(): void {
    const file = resolve(this.path);
    // watching the directory survives editors that write a new file and rename it over the old one
    this.watcher = watch(dirname(file), (_event, name) => {
      if (name !== null && name !== basename(file)) return;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.reload(), RELOAD_DEBOUNCE_MS);
    });
    this.watcher.on('error', (err) => this.logger.error({ reason: err.message, file: this.path }, 'cannot watch the config file'));
  }

  close(): void {
    clearTimeout(this.timer);
    this.watcher?.close();
  }

  private reload(): void {
    let text: string;
    try {
      text = readConfigText(this.path);
    } catch (err) {
      this.logProblems(err);
      return;
    }
    if (text === this.lastText) return;
    try {
      this.applyText(text);
      this.logger.info({ file: this.path }, 'config file reloaded');
    } catch (err) {
      this.logProblems(err);
    }
  }

  private logProblems(err: unknown): void {
    const problems = err instanceof ConfigError ? err.problems : [err instanceof Error ? err.message : String(err)];
    this.logger.error({ file: this.path, problems }, 'config file change ignored: the last good config stays in force');
  }

  private applyText(text: string): void {
    for (const result of checkedSections(this.path, text, this.sections)) {
      if ('apply' in result) {
        result.apply();
        for (const warning of result.warnings ?? []) this.logger.warn({ file: this.path }, warning);
      }
    }
    this.lastText = text;
  }
}

/** Every problem of the file at `path` for these sections, without applying anything. */
export function configFileProblems(path: string, sections: ConfigSection[]): string[] {
  try {
    checkedSections(path, readConfigText(path), sections);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

function readConfigText(path: string): string {
  const unreadable = (err: unknown): ConfigError => new ConfigError([`AISBREAKER_CONFIG: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`]);
  const tooLarge = new ConfigError([`${path}: larger than ${MAX_CONFIG_FILE_BYTES} bytes`]);
  let stats;
  try {
    stats = statSync(path);
  } catch (err) {
    throw unreadable(err);
  }
  // checked before reading: a FIFO would block the read, a huge file fill the memory
  if (!stats.isFile()) throw new ConfigError([`${path}: not a regular file`]);
  if (stats.size > MAX_CONFIG_FILE_BYTES) throw tooLarge;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw unreadable(err);
  }
  // it may have grown between the two looks
  if (Buffer.byteLength(text) > MAX_CONFIG_FILE_BYTES) throw tooLarge;
  return text;
}

/** Each section's verdict on the file; a ConfigError listing every problem when any section has one. */
function checkedSections(path: string, text: string, sections: ConfigSection[]): ReturnType<ConfigSection>[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError([`${path}: not valid JSON (${(err as Error).message})`]);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ConfigError([`${path}: must be a JSON object`]);
  const results = sections.map((section) => section(json as Record<string, unknown>));
  const problems = results.flatMap((r) => ('problems' in r ? r.problems : []));
  if (problems.length > 0) throw new ConfigError(problems.map((p) => `${path}: ${p}`));
  return results;
}
