import { Router } from 'express';
import { PRODUCT_NAME, PRODUCT_VERSION } from '../version.js';

/** Liveness and identity endpoints: no credential, no body. */
export function systemRoutes(isReady: () => { ready: boolean; quotaStore: string }): Router {
  const router = Router();
  router.get('/api/v1/ping', (_req, res) => {
    res.json({ message: 'api-pong' });
  });
  router.get('/api/v1/version', (_req, res) => {
    res.json({ name: PRODUCT_NAME, version: PRODUCT_VERSION });
  });
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', (_req, res) => {
    // quotaStore tells an operator why: e.g. "fallback" while Redis is down under QUOTA_BACKEND_FAILURE=memory
    const { ready, quotaStore } = isReady();
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', quotaStore });
  });
  return router;
}
