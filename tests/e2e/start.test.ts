import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/deploy-recipes.js';
import { GatewayProcess } from '../helpers/gateway-process.js';
import { TEST_SECRET } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';

/** The first start as an operator sees it: the banner, logs for a person or for a machine, and `npm start`. */

const ADMIN_KEY = 'start-test-admin-key-0123456789';

interface LogLine {
  level: number;
  time: string;
  msg: string;
  [field: string]: unknown;
}

function lines(gateway: GatewayProcess): LogLine[] {
  return gateway.output.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as LogLine);
}

/** The warnings that follow the listening line (they come just after it is read). */
async function warningsOf(gateway: GatewayProcess, count: number): Promise<string[]> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const warnings = lines(gateway).filter((line) => line.level === 40).map((line) => line.msg);
    if (warnings.length >= count || Date.now() > deadline) return warnings;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('start banner (JSON, stdout not a terminal)', { timeout: 30_000 }, () => {
  it('names the URL, console, docs, quota store and config file, and warns about what is open to everyone', async () => {
    const gateway = await GatewayProcess.start({ HOST: '0.0.0.0' });
    try {
      const port = new URL(gateway.url).port;
      const listening = lines(gateway).find((line) => line.msg.startsWith('aisbreaker-gateway listening'));
      expect(listening).toMatchObject({
        level: 30,
        msg: `aisbreaker-gateway listening on http://localhost:${port}`,
        url: `http://localhost:${port}`,
        console: `http://localhost:${port}/console`,
        docs: `http://localhost:${port}/docs`,
        quotaStore: 'memory (this process only; REDIS_URL shares quotas between instances)',
        configFile: 'none (built-in services; AISBREAKER_CONFIG names a file)',
      });
      // times a person can read, in JSON too
      expect(listening?.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      const warnings = await warningsOf(gateway, 2);
      expect(warnings).toEqual([
        `minting (POST /api/v1/oauth/token) and introspection are open to anyone who can reach 0.0.0.0:${port}: neither AISBREAKER_ADMIN_KEY nor an operator key with the admin scope is set`,
        `/metrics is open to anyone who can reach 0.0.0.0:${port} (it names operator projects): keep it off the public side of your proxy`,
      ]);
      expect((await fetch(`${gateway.url}/console`)).status).toBe(200);
    } finally {
      await gateway.stop();
    }
  });

  it('with an operator key of the admin scope (and no AISBREAKER_ADMIN_KEY): no minting warning', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aisbgw-start-'));
    const configFile = join(dir, 'gateway.json');
    writeFileSync(configFile, JSON.stringify({ keys: { 'start-admin-operator-key-0123456789': { project: 'Ops', role: 'r', scopes: ['admin'] } }, roles: { r: { limits: {} } } }));
    const gateway = await GatewayProcess.start({ AISBREAKER_CONFIG: configFile });
    try {
      const warnings = await warningsOf(gateway, 1);
      expect(warnings).toEqual([expect.stringMatching(/^\/metrics is open to anyone/)]);
    } finally {
      await gateway.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('with an admin key, Redis and a config file: no minting warning, the Redis address without its password', async () => {
    const redisPort = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'aisbgw-start-'));
    const configFile = join(dir, 'gateway.json');
    writeFileSync(configFile, JSON.stringify({ services: { 'chat:slow': { kind: 'dummy', streamDelayMs: 100 } } }));
    // no Redis listens there: the gateway starts on its memory fallback
    const gateway = await GatewayProcess.start({ AISBREAKER_ADMIN_KEY: ADMIN_KEY, REDIS_URL: `redis://:hunter2-redis-password@127.0.0.1:${redisPort}/2`, AISBREAKER_CONFIG: configFile });
    try {
      const listening = lines(gateway).find((line) => line.msg.startsWith('aisbreaker-gateway listening'));
      expect(listening?.quotaStore).toBe(`Redis redis://127.0.0.1:${redisPort}/2 (QUOTA_BACKEND_FAILURE=memory)`);
      expect(listening?.configFile).toBe(configFile);
      const warnings = await warningsOf(gateway, 1);
      expect(warnings.some((w) => w.includes('minting'))).toBe(false);
      // loopback: open only to this machine
      expect(warnings).toContain('/metrics is open to anyone on this machine (it names operator projects): keep it off the public side of your proxy');
      expect(gateway.output.join('\n')).not.toContain('hunter2-redis-password');
      expect(gateway.output.join('\n')).not.toContain(ADMIN_KEY);
    } finally {
      await gateway.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Runs `command` in a pseudo-terminal (util-linux `script`), as a person starting it in a shell would. */
function inTerminal(command: string, env: Record<string, string>, untilOutput: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qefc', command, '/dev/null'], { env: { PATH: process.env.PATH ?? '', ...env }, cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no ${untilOutput} in:\n${output}`));
    }, 15_000);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
      if (untilOutput.test(output)) {
        clearTimeout(timer);
        child.kill('SIGTERM');
      }
    });
    child.once('exit', () => resolve(output));
  });
}

describe('logs on a terminal', { timeout: 30_000 }, () => {
  it.skipIf(!existsSync('/usr/bin/script'))('are lines for a person: time, level, message, the banner fields one per line; no JSON', async () => {
    const port = await freePort();
    const output = await inTerminal(`node dist/main.js`, { AISBREAKER_SECRET: TEST_SECRET, HOST: '127.0.0.1', PORT: String(port), NO_COLOR: '1' }, /keep it off the public side/);
    const plain = output.replace(/\u001b\[[0-9;]*m/g, '').replace(/\r/g, '');
    expect(plain).toMatch(new RegExp(`^\\[\\d\\d:\\d\\d:\\d\\d\\.\\d{3}\\] INFO: aisbreaker-gateway listening on http://127\\.0\\.0\\.1:${port}$`, 'm'));
    expect(plain).toContain(`    console: "http://127.0.0.1:${port}/console"`);
    expect(plain).toContain(`    docs: "http://127.0.0.1:${port}/docs"`);
    expect(plain).toMatch(/^\[[\d:.]+\] WARN: minting \(POST \/api\/v1\/oauth\/token\) and introspection are open to anyone on this machine/m);
    expect(plain).not.toContain('{"level"');
  });
});

describe('npm start', { timeout: 60_000 }, () => {
  let app: string;
  beforeAll(() => {
    // a copy of the checkout, times kept: what this test starts cannot race the suite's dist/, and
    // a source edited while the suite runs does not make it compile
    app = mkdtempSync(join(tmpdir(), 'aisbgw-npm-start-'));
    for (const path of ['src', 'dist', 'scripts', 'package.json', 'tsconfig.json', 'tsconfig.build.json']) {
      cpSync(join(ROOT, path), join(app, path), { recursive: true, preserveTimestamps: true });
    }
    symlinkSync(join(ROOT, 'node_modules'), join(app, 'node_modules'));
  });
  afterAll(() => rmSync(app, { recursive: true, force: true }));

  it('with the build current, compiles nothing again and starts; Ctrl-C (SIGINT to the group) stops the gateway cleanly', async () => {
    const dist = join(app, 'dist');
    const files = (readdirSync(dist, { recursive: true }) as string[]).map((f) => join(dist, f)).filter((f) => statSync(f).isFile());
    const before = new Map(files.map((f) => [f, statSync(f).mtimeMs]));
    const started = Date.now();
    const gateway = await GatewayProcess.run(['npm', 'start'], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', AISBREAKER_SECRET: TEST_SECRET, HOST: '127.0.0.1', PORT: '0' },
      cwd: app,
      group: true,
    });
    const tookMs = Date.now() - started;
    try {
      expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
      expect(files.filter((f) => statSync(f).mtimeMs !== before.get(f))).toEqual([]);
      expect(gateway.output.join('\n')).not.toContain('compiling');
      // no compiler run at all, where a full build took 35 s on a loaded 2-core machine
      console.log(`npm start with a current build: listening after ${tookMs} ms`);
    } finally {
      await gateway.stop('SIGINT');
    }
    expect(gateway.output.some((line) => line.includes('"msg":"stopped"'))).toBe(true);
    expect(await fetch(`${gateway.url}/healthz`).then(() => 'answered', () => 'gone')).toBe('gone');
  });
});
