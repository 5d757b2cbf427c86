import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/gateway.js';

describe('API documentation', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(() => gw.close());

  it('serves an OpenAPI 3.1 document whose request schemas are the validating zod schemas', async () => {
    const res = await fetch(`${gw.url}/openapi.json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as {
      openapi: string;
      paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: Record<string, unknown> }> } }>>;
    };
    expect(doc.openapi).toBe('3.1.0');
    for (const path of ['/api/v1/oauth/token', '/api/v1/oauth/revoke', '/api/v1/oauth/introspect', '/api/v1/oauth/tokeninfo', '/api/v1/process', '/v1/chat/completions', '/v1/messages', '/v1/messages/count_tokens', '/v1/responses', '/v1/responses/{id}', '/v1/embeddings', '/v1/completions', '/v1/models', '/v1/deployments/{model}/limits', '/healthz']) {
      expect(doc.paths[path], path).toBeDefined();
    }
    const mint = doc.paths['/api/v1/oauth/token']?.post?.requestBody?.content['application/json']?.schema as {
      required: string[];
      properties: { requestAuthAndQuotas: { properties: { requestQuotas: { properties: { globalRequestLimits: { properties: Record<string, { type: string; minimum: number }>; additionalProperties: boolean } } } } } };
    };
    expect(mint.required).toEqual(['requestAuthAndQuotas']);
    const limits = mint.properties.requestAuthAndQuotas.properties.requestQuotas.properties.globalRequestLimits;
    expect(limits.properties.requestsPerMinute).toMatchObject({ type: 'integer', minimum: 1 });
    expect(limits.properties.tokensPerDay).toMatchObject({ type: 'integer', minimum: 1 });
    // strict objects: the document says unknown limit names are refused, as the server does
    expect(limits.additionalProperties).toBe(false);
  });

  it('renders a readable, self-contained reference page', async () => {
    const res = await fetch(`${gw.url}/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    expect(res.headers.get('content-security-policy')).toBe("default-src 'none';style-src 'unsafe-inline';base-uri 'none';frame-ancestors 'none'");
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await res.text();
    expect(html).toContain('<code>/api/v1/oauth/token</code>');
    expect(html).toContain('<code>/api/v1/process</code>');
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3|127\.0\.0\.1:)/);
    // the way back
    expect(html).toContain('<a href="/console/">&larr; Web console</a>');
  });

  it('shows an example per main operation, at the address it was asked at, and each runs as shown', async () => {
    const html = await (await fetch(`${gw.url}/docs`)).text();
    const examples = [...html.matchAll(/<pre class="example"><code>([^<]*)<\/code><\/pre>/g)].map((m) => unescapeHtml(m[1] ?? ''));
    expect(examples.length).toBeGreaterThanOrEqual(8);
    for (const example of examples) expect(example).toContain(`curl -s ${gw.url}/`);
    const mintExample = examples.find((e) => e.startsWith('export TOKEN='));
    const revokeExample = examples.find((e) => e.includes('/api/v1/oauth/revoke'));
    // the mint example keeps the token for the others; printing it stands in for the shell keeping it
    const minted = await run(`${mintExample ?? ''}; printf %s "$TOKEN"`, {});
    expect(minted).toMatch(/^aisbreaker_/);
    for (const example of examples.filter((e) => e !== mintExample && e !== revokeExample)) {
      const answer = JSON.parse(await run(example, { TOKEN: minted })) as { success?: boolean; error?: unknown };
      expect(answer.success, example).not.toBe(false);
      expect(answer.error, example).toBeUndefined();
    }
    expect(JSON.parse(await run(revokeExample ?? '', { TOKEN: minted }))).toMatchObject({ revoked: true });
  });
});

function unescapeHtml(text: string): string {
  return text.replace(/&(amp|lt|gt|quot|#39);/g, (_all, name: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" })[name] ?? '');
}

/** A shell command line as a person would paste it; its stdout (the gateway runs in this process: never block it). */
async function run(command: string, env: Record<string, string>): Promise<string> {
  const { stdout } = await promisify(execFile)('sh', ['-c', command], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', timeout: 10_000 });
  return stdout;
}
