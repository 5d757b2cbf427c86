import { loadConfig, orExitOnConfigError } from './config.js';

/** Process entry of `npm start`. The settings are checked before the rest of the gateway is even loaded. */
const config = orExitOnConfigError(() => loadConfig(process.env));
const { serve } = await import('./server.js');
await serve(config);
