import { configFileProblems, type ConfigSection } from './config-reload.js';
import { KeyDirectory } from './keys/directory.js';
import { parseCatalog } from './services/catalog.js';

/** The config file's operator API keys (`keys`) and the roles they name (`roles`). */
export function parseKeysSection(file: Record<string, unknown>): ReturnType<typeof KeyDirectory.parse> {
  return KeyDirectory.parse({ keys: file.keys, roles: file.roles });
}

/**
 * The config file's problems when the environment already has some, so that one failed start
 * lists them all. The same parsers as the gateway's sections (app.ts), which apply what they parse.
 */
export function configFileProblemsAtStart(path: string): string[] {
  type Parse = (file: Record<string, unknown>) => ReturnType<typeof parseCatalog> | ReturnType<typeof parseKeysSection>;
  // only checked here: the gateway applies what its own sections parse
  const checkOnly =
    (parse: Parse): ConfigSection =>
    (file) => {
      const parsed = parse(file);
      return 'problems' in parsed ? parsed : { apply: () => undefined };
    };
  return configFileProblems(path, [checkOnly(parseCatalog), checkOnly(parseKeysSection)]);
}
