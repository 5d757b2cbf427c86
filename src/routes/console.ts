import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Router, type RequestHandler } from 'express';
import { CONSOLE_CSS, CONSOLE_HTML } from '../console/assets.js';
import { DEFAULT_EXPIRATION_TIME_SPAN } from '../token/mint-request.js';
import { pageHeaders } from './page-headers.js';

export interface ConsoleDeps {
  /** the registered serviceIds (the registry may be replaced on a config reload) */
  serviceIds: () => string[];
  /** those of them that need no secret: every credential may use them */
  openServiceIds: () => string[];
  /** whether minting needs AISBREAKER_ADMIN_KEY (the key itself never reaches this router) */
  adminKeyRequired: boolean;
  maxTokenLifetimeMs: number;
}

/**
 * Strict: the page's own scripts and stylesheet only, requests to this origin only; no inline
 * script or style, no frame, no plugin, no other origin for anything.
 */
const secureHeaders = pageHeaders({
  defaultSrc: ["'none'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'", 'data:'],
  connectSrc: ["'self'"],
  formAction: ["'self'"],
});

/** Browser modules of the console: the compiled src/console/*.ts, all but the server-side assets. */
const MODULES = new Set(['app', 'api', 'chat', 'dom', 'format', 'inspect', 'mint', 'state']);

/**
 * Where the compiled browser modules are: next to this file's own folder when it runs from
 * dist/, else (tests running the TypeScript sources) in the project's dist/ after `npm run build`.
 */
function modulesDirectory(): string {
  const candidates = [new URL('../console/', import.meta.url), new URL('../../dist/console/', import.meta.url)].map((url) => fileURLToPath(url));
  return candidates.find((dir) => existsSync(`${dir}app.js`)) ?? candidates[0] ?? '';
}

/**
 * `/console`: the web console (mint, inspect, try), static and self-contained. `/` leads to it.
 * `/console/config.json` tells the page what it may know of the server: the registered service
 * ids, whether minting needs the admin key, the longest token lifetime. No secret, no key.
 */
export function consoleRoutes(deps: ConsoleDeps): Router {
  const router = Router();
  const directory = modulesDirectory();

  router.get('/', (_req, res) => {
    res.redirect(302, '/console/');
  });
  router.get(['/console', '/console/'], ...secureHeaders, (_req, res) => {
    res.set('Cache-Control', 'no-cache');
    res.type('html').send(CONSOLE_HTML);
  });
  router.get('/console/console.css', ...secureHeaders, (_req, res) => {
    res.set('Cache-Control', 'no-cache');
    res.type('css').send(CONSOLE_CSS);
  });
  router.get('/console/config.json', ...secureHeaders, (_req, res) => {
    res.set('Cache-Control', 'no-store');
    res.json({
      adminKeyRequired: deps.adminKeyRequired,
      services: deps.serviceIds(),
      openServices: deps.openServiceIds(),
      maxTokenLifetimeSeconds: Math.floor(deps.maxTokenLifetimeMs / 1000),
      defaultExpirationTimeSpan: DEFAULT_EXPIRATION_TIME_SPAN,
    });
  });
  // only the browser modules: any other name is left to the 404 further on
  const browserModule: RequestHandler = (req, _res, next) => next(MODULES.has(String(req.params.module)) ? undefined : 'route');
  router.get('/console/:module.js', browserModule, ...secureHeaders, (req, res, next) => {
    const name = String(req.params.module);
    res.set('Cache-Control', 'no-cache');
    res.type('text/javascript');
    res.sendFile(`${name}.js`, { root: directory, dotfiles: 'deny' }, (err) => {
      if (err) next();
    });
  });
  return router;
}
