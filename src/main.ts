import cluster from 'node:cluster';
import { ConfigError, exitOnConfigProblems, loadConfig, type Config } from './config.js';

/** Process entry of `npm start`. The settings are checked before the rest of the gateway is even loaded. */
const config = await loadSettings();
if (config.workers > 1 && cluster.isPrimary) {
  // WORKERS=N: this process only supervises; each worker runs this file again as a whole gateway
  (await import('./workers.js')).superviseWorkers(config);
} else {
  const { serve } = await import('./server.js');
  await serve(config);
}

/**
 * The environment's settings, or exit. When they have problems, the config file's problems are
 * listed with them (the gateway otherwise checks the file as it loads it), so that one failed
 * start names everything there is to fix.
 */
async function loadSettings(): Promise<Config> {
  try {
    return loadConfig(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const path = process.env.AISBREAKER_CONFIG?.trim();
    let fileProblems: string[] = [];
    try {
      if (path) fileProblems = (await import('./config-sections.js')).configFileProblemsAtStart(path);
    } catch {
      // the settings' own problems are what matters now; the file is checked again on the next start
      fileProblems = [`AISBREAKER_CONFIG: ${path} could not be checked`];
    }
    return exitOnConfigProblems([...err.problems, ...fileProblems]);
  }
}
