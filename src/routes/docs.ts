import { Router } from 'express';
import { pageHeaders } from './page-headers.js';
import { openApiDocument, type Operation, type PathOperations } from '../openapi.js';

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
}

/** Code spans in descriptions (`x`), after escaping. */
function prose(text: string): string {
  return escapeHtml(text).replace(/`([^`]+)`/g, '<code>$1</code>');
}

/**
 * A curl command per operation, to copy and run: `$TOKEN` is the token the mint example keeps
 * (the tests run each of them against a gateway, revocation last).
 */
const EXAMPLES: Record<string, string> = {
  'post /api/v1/oauth/token': `export TOKEN=$(curl -s {origin}/api/v1/oauth/token -H 'Content-Type: application/json' \\
  -d '{"requestAuthAndQuotas":{"requestQuotas":{"perClientRequestLimits":{"requestsPerMinute":60}}},"expirationTimeSpan":"2h"}' | jq -r .access_token)`,
  'post /api/v1/process': `curl -s {origin}/api/v1/process -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
  -d '{"service":{"serviceId":"chat:dummy"},"request":{"inputs":[{"text":{"role":"user","content":"Hello"}}]}}'`,
  'post /v1/chat/completions': `curl -s {origin}/v1/chat/completions -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
  -d '{"model":"chat:dummy/any","messages":[{"role":"user","content":"Hi"}]}'`,
  'get /v1/models': `curl -s {origin}/v1/models -H "Authorization: Bearer $TOKEN"`,
  'get /v1/deployments/{model}/limits': `curl -s {origin}/v1/deployments/chat:dummy/limits -H "Authorization: Bearer $TOKEN"`,
  'get /api/v1/oauth/tokeninfo': `curl -s {origin}/api/v1/oauth/tokeninfo -H "Authorization: Bearer $TOKEN"`,
  'post /api/v1/oauth/introspect': `curl -s {origin}/api/v1/oauth/introspect -d "token=$TOKEN"    # with an admin key set: -H "Authorization: Bearer <admin key>"`,
  'post /api/v1/oauth/revoke': `curl -s {origin}/api/v1/oauth/revoke -d "token=$TOKEN"`,
};

function operationHtml(path: string, method: string, op: Operation): string {
  const body = op.requestBody as { content?: Record<string, { schema?: unknown }> } | undefined;
  const [type, media] = Object.entries(body?.content ?? {})[0] ?? [];
  const example = EXAMPLES[`${method} ${path}`];
  return `<section id="${escapeHtml(method + path)}">
<h2><span class="method ${escapeHtml(method)}">${escapeHtml(method.toUpperCase())}</span> <code>${escapeHtml(path)}</code></h2>
<p>${prose(op.summary)}</p>${op.description ? `\n<p>${prose(op.description)}</p>` : ''}
${example ? `<pre class="example"><code>${escapeHtml(example)}</code></pre>` : ''}
${media?.schema ? `<details><summary>request body (${escapeHtml(type ?? '')})</summary><pre>${escapeHtml(JSON.stringify(media.schema, null, 2))}</pre></details>` : ''}
<p class="responses">responses: ${Object.keys(op.responses).map(escapeHtml).join(', ')}</p>
</section>`;
}

/**
 * `/openapi.json` and `/docs`: the API reference, rendered on the server from the same document;
 * no script, font or stylesheet from anywhere else (the page works offline, under a strict CSP).
 */
export function docsRoutes(): Router {
  const router = Router();
  const document = openApiDocument();
  const paths = document.paths as PathOperations;
  // built once; each answer puts in the address it was asked at, for examples to copy as they are
  const template = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(String((document.info as { title: string }).title))} API reference</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1d2330}
h1{font-size:1.6rem}h2{font-size:1.05rem;margin:0 0 .3rem}section{border-top:1px solid #dde1e8;padding:1rem 0}
code,pre{font-family:ui-monospace,monospace;font-size:.9em}pre{background:#f4f6f9;padding:.8rem;overflow:auto;border-radius:6px}
.method{display:inline-block;min-width:3.6rem;text-align:center;border-radius:4px;color:#fff;font-size:.8rem;padding:.1rem .4rem;background:#4a5568}
.post{background:#2f6f4f}.get{background:#2b5a9a}.responses{color:#566}pre.example{white-space:pre-wrap;word-break:break-all}
</style></head><body>
<p><a href="/console/">&larr; Web console</a></p>
<h1>${escapeHtml(String((document.info as { title: string }).title))} <small>${escapeHtml(String((document.info as { version: string }).version))}</small></h1>
<p>${prose(String((document.info as { description: string }).description))} Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p>
<p>Credentials: <code>Authorization: Bearer &lt;aisbreaker_ token or API key&gt;</code> or <code>Api-Key: &lt;key&gt;</code>. Errors: <code>{"success":false,"error":{"code","message","type","details"}}</code>.</p>
<p>The examples run as shown: the one for <code>POST /api/v1/oauth/token</code> keeps a token in <code>TOKEN</code> for the others (it needs <code>jq</code>), and revoking it is best left for last; <code>chat:dummy</code> answers without any secret.</p>
${Object.entries(paths)
  .flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => operationHtml(path, method, op)))
  .join('\n')}
</body></html>`;

  router.get('/openapi.json', (_req, res) => {
    res.json(document);
  });
  // the page's one stylesheet is inline; it has no script at all
  router.get('/docs', ...pageHeaders({ defaultSrc: ["'none'"], styleSrc: ["'unsafe-inline'"] }), (req, res) => {
    res.type('html').send(template.replaceAll('{origin}', escapeHtml(`${req.protocol}://${req.get('host') ?? 'localhost'}`)));
  });
  return router;
}
