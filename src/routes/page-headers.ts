import type { RequestHandler } from 'express';
import helmet from 'helmet';

/**
 * The security headers of the HTML pages the gateway serves (console, API docs): helmet with a
 * Content-Security-Policy of exactly `directives` and no framing at all; its other defaults
 * (nosniff, no referrer, same-origin opener and resources) stay on. HSTS is left to whatever
 * terminates TLS in front of the gateway, which alone knows whether there is any.
 */
export function pageHeaders(directives: Record<string, string[]>): RequestHandler[] {
  return [
    helmet({
      contentSecurityPolicy: { useDefaults: false, directives: { ...directives, baseUri: ["'none'"], frameAncestors: ["'none'"] } },
      strictTransportSecurity: false,
      xFrameOptions: { action: 'deny' },
    }),
    // not one of helmet's: no page here needs a device or payment API
    (_req, res, next) => {
      res.setHeader('Permissions-Policy', 'camera=(), microphone=(), geolocation=(), payment=()');
      next();
    },
  ];
}
