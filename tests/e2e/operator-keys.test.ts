import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { postProcess, processBody, startGateway, type TestGateway } from '../helpers/gateway.js';

const KEY = 'operator-key-0123456789abcdefghij';
const OTHER_KEY = 'second-operator-key-0123456789ab';

function configWith(keys: Record<string, unknown>, limits: Record<string, unknown> = { 'chat:dummy': { requestMinute: 2 } }): string {
  return JSON.stringify({ keys, roles: { default: { limits }, wide: { limits: { 'chat:dummy': { requestMinute: 5 }, 'chat:echo': {} } } } });
}

/** Writes the file as editors do: a new file renamed over the old one. */
function writeConfig(path: string, text: string): void {
  writeFileSync(path + '.tmp', text);
  renameSync(path + '.tmp', path);
}

async function until(check: () => Promise<boolean>, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('operator API keys from the config file', () => {
  let dir: string;
  let path: string;
  let gw: TestGateway;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'aisbgw-keys-'));
    path = join(dir, 'config.json');
    // analytics:read for the AI DIAL limits endpoint (operator keys have only inference unless they say so)
    writeConfig(path, configWith({ [KEY]: { project: 'Project1', role: 'default', scopes: ['inference', 'analytics:read'] } }));
    gw = await startGateway({ AISBREAKER_CONFIG: path });
  });
  afterAll(async () => {
    await gw.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves a listed model with Bearer and Api-Key, counts per key and model, refuses the rest with 429', async () => {
    const first = await postProcess(gw.url, KEY, processBody('chat:dummy', 'hi'));
    expect(first.status).toBe(200);
    expect(first.headers.get('x-ratelimit-remaining-requests')).toBe('1');
    const second = await postProcess(gw.url, undefined, processBody('chat:dummy', 'hi'), { 'Api-Key': KEY });
    expect(second.status).toBe(200);
    const third = await postProcess(gw.url, KEY, processBody('chat:dummy', 'hi'));
    expect(third.status).toBe(429);
    const body = (await third.json()) as { error: { code: string; details: Record<string, unknown> } };
    expect(body.error.code).toBe('RATE_LIMITED');
    expect(body.error.details).toMatchObject({ window: 'minute', limit: 2 });
    // the request log names the key's project and the service, never the key
    const served = gw.logs.map((l) => JSON.parse(l) as { msg?: string; project?: string; service?: string; status?: number }).filter((l) => l.msg === 'request' && l.status === 200);
    expect(served.length).toBeGreaterThanOrEqual(2);
    expect(served.every((l) => l.project === 'Project1' && l.service === 'chat:dummy')).toBe(true);
    expect(gw.logs.join('\n')).not.toContain(KEY);
  });

  it('refuses a model its role does not list with 403, and an unknown key with 401', async () => {
    const forbidden = await postProcess(gw.url, KEY, processBody('chat:echo', 'hi'));
    expect(forbidden.status).toBe(403);
    expect(((await forbidden.json()) as { error: { code: string } }).error.code).toBe('FORBIDDEN');
    const unknown = await postProcess(gw.url, 'not-a-key-of-this-server-000000', processBody('chat:dummy', 'hi'));
    expect(unknown.status).toBe(401);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe('INVALID_API_KEY');
  });

  it('reports usage in AI DIAL shape without counting', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${gw.url}/v1/deployments/chat:dummy/limits`, { headers: { Authorization: `Bearer ${KEY}` } });
      expect(res.status).toBe(200);
      const stats = (await res.json()) as Record<string, { total: number; used: number }>;
      expect(stats.minuteRequestStats).toEqual({ total: 2, used: 2 });
      expect(stats.dayTokenStats?.used).toBe(0);
      expect(stats.dayTokenStats?.total).toBeGreaterThan(1e18);
    }
  });

  it('reloads the file on change, and keeps the last good config on an invalid edit', async () => {
    writeConfig(path, configWith({ [KEY]: { project: 'Project1', roles: ['default', 'wide'] }, [OTHER_KEY]: { project: 'P2', role: 'wide' } }));
    await until(async () => (await postProcess(gw.url, OTHER_KEY, processBody('chat:echo', 'x'))).status === 200);
    // the most generous role now applies to KEY: 5 per minute, of which 2 are used
    expect((await postProcess(gw.url, KEY, processBody('chat:dummy', 'x'))).status).toBe(200);

    const logLines = gw.logs.length;
    writeConfig(path, configWith({ [OTHER_KEY]: { project: 'P2', role: 'missing-role' } }));
    await until(async () => gw.logs.slice(logLines).some((l) => l.includes('config file change ignored')));
    const ignored = gw.logs.slice(logLines).find((l) => l.includes('config file change ignored')) ?? '';
    expect(ignored).toContain('role \\"missing-role\\" does not exist');
    expect(ignored).not.toContain(OTHER_KEY);
    expect((await postProcess(gw.url, KEY, processBody('chat:dummy', 'x'))).status).toBe(200);
    expect((await postProcess(gw.url, OTHER_KEY, processBody('chat:echo', 'x'))).status).toBe(200);
  });

  it('an invalid file at start refuses to start, naming the key by hash and the reason', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, configWith({ [KEY]: { role: 'default' } }));
    await expect(startGateway({ AISBREAKER_CONFIG: bad })).rejects.toThrow(ConfigError);
    await expect(startGateway({ AISBREAKER_CONFIG: bad })).rejects.toThrow(/keys\[sha256:[0-9a-f]{12}…\]\.project: must name a project/);
    writeFileSync(bad, '{ not json');
    await expect(startGateway({ AISBREAKER_CONFIG: bad })).rejects.toThrow(/not valid JSON/);
  });
});
