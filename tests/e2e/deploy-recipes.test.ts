import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { configFileProblemsAtStart } from '../../src/config-sections.js';
import { ROOT, dockerEnv, dockerInstructions, interpolateCompose, isKnownSetting, knownSettings, repoFile, settingsProblems, unitService } from '../helpers/deploy-recipes.js';
import { GatewayProcess } from '../helpers/gateway-process.js';
import { TEST_SECRET } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';

/**
 * The deployment recipes, checked without docker, compose, a cluster or systemd: each file read
 * as its tool reads it, its settings checked against the ones the gateway knows (and validated as
 * the gateway's start validates them), and its start command run as the tool would run it.
 */

const known = knownSettings();
const ADMIN_KEY = 'recipes-admin-key-0123456789';

function unknownSettings(names: string[]): string[] {
  return names.filter((name) => !isKnownSetting(name, known));
}

/** `node -e` and friends: the exit code of a command run with this environment. */
function exitCodeOf(command: string[], env: Record<string, string>, cwd?: string): number | null {
  const [program = '', ...args] = command;
  return spawnSync(program, args, { env, cwd, encoding: 'utf8', timeout: 10_000 }).status;
}

it('knows the settings from the sources, not from a list kept by hand', () => {
  for (const name of ['PORT', 'AISBREAKER_SECRET', 'REDIS_URL', 'TRUST_PROXY', 'SHUTDOWN_GRACE_MS']) expect(known.has(name)).toBe(true);
  expect(isKnownSetting('AISBREAKER_SECRT', known)).toBe(false);
});

it('.env.example names only settings the gateway knows, with values it accepts', () => {
  const text = repoFile('.env.example');
  const names = [...text.matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1] ?? '');
  expect(names.length).toBeGreaterThan(10);
  expect(unknownSettings(names)).toEqual([]);
  const active = Object.fromEntries([...text.matchAll(/^([A-Z][A-Z0-9_]+)=(.*)$/gm)].map((m) => [m[1] ?? '', m[2] ?? '']));
  expect(settingsProblems(active)).toEqual([]);
});

describe('Dockerfile', () => {
  const instructions = dockerInstructions(repoFile('Dockerfile'));
  const froms = instructions.flatMap((instruction, i) => (instruction.keyword === 'FROM' ? [i] : []));
  const runtime = instructions.slice(froms.at(-1));
  const one = (keyword: string): string => {
    const found = runtime.filter((instruction) => instruction.keyword === keyword);
    expect(found, keyword).toHaveLength(1);
    return found[0]?.args ?? '';
  };
  const env = Object.assign({}, ...runtime.filter((i) => i.keyword === 'ENV').map((i) => dockerEnv(i.args))) as Record<string, string>;
  const cmd = JSON.parse(one('CMD')) as string[];
  const healthcheck = JSON.parse(one('HEALTHCHECK').replace(/^.*?CMD\s+/, '')) as string[];
  let app: string;

  beforeAll(() => {
    // the image's /app: package.json, dist/ and node_modules/ (here the checkout's own)
    app = mkdtempSync(join(tmpdir(), 'aisbgw-image-'));
    copyFileSync(join(ROOT, 'package.json'), join(app, 'package.json'));
    symlinkSync(join(ROOT, 'dist'), join(app, 'dist'));
    symlinkSync(join(ROOT, 'node_modules'), join(app, 'node_modules'));
  });
  afterAll(() => rmSync(app, { recursive: true, force: true }));

  it('builds in two stages and ships production dependencies only, as a non-root user', () => {
    expect(froms.length).toBeGreaterThanOrEqual(2);
    const runs = runtime.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    expect(runs.some((r) => /npm ci\b.*--omit=dev/.test(r))).toBe(true);
    expect(runtime.some((i) => i.keyword === 'COPY' && /^--from=\S+ \/app\/dist \.\/dist$/.test(i.args))).toBe(true);
    expect(one('USER')).not.toMatch(/^(root|0)$/);
    expect(one('WORKDIR')).toBe('/app');
    expect(one('STOPSIGNAL')).toBe('SIGTERM');
  });

  it('sets only known settings, with values the gateway accepts', () => {
    expect(unknownSettings(Object.keys(env))).toEqual([]);
    expect(settingsProblems(env)).toEqual([]);
    expect(one('EXPOSE')).toBe(env.PORT);
  });

  it('starts with node itself as the process (exec form), answers its HEALTHCHECK, and exits 0 on SIGTERM', async () => {
    // exec form: no shell in between, so the SIGTERM docker sends reaches node
    expect(cmd[0]).toBe('node');
    expect(healthcheck[0]).toBe('node');
    expect(healthcheck.join(' ')).toContain('/healthz');
    const port = String(await freePort());
    // as `docker run -e AISBREAKER_SECRET=... -e PORT=...` would start it
    const containerEnv = { PATH: process.env.PATH ?? '', ...env, PORT: port, AISBREAKER_SECRET: TEST_SECRET };
    const gateway = await GatewayProcess.run(cmd, { env: containerEnv, cwd: app });
    try {
      expect(new URL(gateway.url).port).toBe(port);
      expect(exitCodeOf(healthcheck, containerEnv, app)).toBe(0);
    } finally {
      expect(await gateway.stop('SIGTERM')).toBe(0);
    }
    expect(exitCodeOf(healthcheck, containerEnv, app)).toBe(1);
  });

  it('leaves the build context without local state (.dockerignore)', () => {
    const ignored = repoFile('.dockerignore').split('\n').map((l) => l.trim());
    for (const path of ['node_modules', 'dist', '.data', '.env', '.git']) expect(ignored).toContain(path);
  });
});

describe('compose.yaml', () => {
  const vars = { AISBREAKER_SECRET: TEST_SECRET, AISBREAKER_ADMIN_KEY: ADMIN_KEY };
  const compose = parse(interpolateCompose(repoFile('compose.yaml'), vars), { merge: true }) as {
    services: Record<string, { environment?: Record<string, string>; volumes?: string[]; depends_on?: Record<string, { condition: string }>; stop_grace_period?: string; ports?: string[]; build?: string }>;
  };
  const gateways = ['gateway-1', 'gateway-2', 'gateway-3'].map((name) => compose.services[name]);

  it('refuses to start without the secret and the admin key', () => {
    expect(() => interpolateCompose(repoFile('compose.yaml'), { AISBREAKER_ADMIN_KEY: ADMIN_KEY })).toThrow(/AISBREAKER_SECRET/);
    expect(() => interpolateCompose(repoFile('compose.yaml'), { AISBREAKER_SECRET: TEST_SECRET })).toThrow(/AISBREAKER_ADMIN_KEY/);
  });

  it('runs three instances of this image with one environment of known, valid settings', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['gateway-1', 'gateway-2', 'gateway-3', 'nginx', 'redis']);
    const env = gateways[0]?.environment ?? {};
    for (const gateway of gateways) {
      expect(gateway?.build).toBe('.');
      expect(gateway?.environment).toEqual(env);
      expect(gateway?.depends_on?.redis?.condition).toBe('service_healthy');
    }
    expect(unknownSettings(Object.keys(env))).toEqual([]);
    expect(settingsProblems(env)).toEqual([]);
    expect(env.AISBREAKER_SECRET).toBe(TEST_SECRET);
    // the instances reach Redis by its service name
    expect(new URL(env.REDIS_URL ?? '').hostname).toBe('redis');
    // docker's kill waits longer than the gateway's drain
    expect(parseInt(gateways[0]?.stop_grace_period ?? '0', 10) * 1000).toBeGreaterThan(Number(env.SHUTDOWN_GRACE_MS ?? 10_000));
  });

  it('puts nginx in front with the shipped config, naming each instance at the port the image listens on', () => {
    const nginx = compose.services.nginx;
    const mount = (nginx?.volumes ?? [])[0] ?? '';
    const [source = '', target = ''] = mount.split(':');
    expect(existsSync(join(ROOT, source))).toBe(true);
    expect(target).toBe('/etc/nginx/conf.d/default.conf');
    const imagePort = dockerEnv(dockerInstructions(repoFile('Dockerfile')).filter((i) => i.keyword === 'ENV').map((i) => i.args).join(' ')).PORT;
    const servers = [...repoFile(source).matchAll(/^\s*server (\S+);$/gm)].map((m) => m[1]);
    expect(servers).toEqual(['gateway-1', 'gateway-2', 'gateway-3'].map((name) => `${name}:${imagePort}`));
    for (const name of ['gateway-1', 'gateway-2', 'gateway-3']) expect(nginx?.depends_on?.[name]?.condition).toBe('service_healthy');
    // only nginx is published: no client can reach an instance and forge X-Forwarded-For
    expect(nginx?.ports).toHaveLength(1);
    for (const gateway of gateways) expect(gateway?.ports).toBeUndefined();
  });
});

describe('Kubernetes manifests (deploy/kubernetes)', () => {
  interface Manifest {
    kind: string;
    metadata: { name: string; labels?: Record<string, string> };
    [field: string]: unknown;
  }
  const dir = join(ROOT, 'deploy/kubernetes');
  const manifests = readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => parseAllDocuments(repoFile(`deploy/kubernetes/${f}`)).map((doc) => doc.toJS() as Manifest));
  const byKind = (kind: string): Manifest => {
    const found = manifests.filter((m) => m.kind === kind);
    expect(found, kind).toHaveLength(1);
    return found[0] as Manifest;
  };
  interface Container {
    ports: { name: string; containerPort: number }[];
    env: { name: string; value: string }[];
    envFrom: { secretRef: { name: string } }[];
    volumeMounts: { name: string; mountPath: string }[];
    readinessProbe: { httpGet: { path: string; port: string } };
    livenessProbe: { httpGet: { path: string; port: string } };
    lifecycle: { preStop: { exec: { command: string[] } } };
  }
  const deployment = byKind('Deployment') as Manifest & {
    spec: { replicas: number; selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: { terminationGracePeriodSeconds: number; securityContext: { runAsUser: number }; containers: Container[]; volumes: { name: string; configMap: { name: string } }[] } } };
  };
  const secret = byKind('Secret') as Manifest & { stringData: Record<string, string> };
  const configMap = byKind('ConfigMap') as Manifest & { data: Record<string, string> };
  const service = byKind('Service') as Manifest & { spec: { selector: Record<string, string>; ports: { targetPort: string }[] } };
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0] as Container;
  const env = Object.fromEntries(container.env.map((e) => [e.name, e.value]));

  it('names only known settings, in the Deployment and in the Secret', () => {
    expect(unknownSettings([...Object.keys(env), ...Object.keys(secret.stringData)])).toEqual([]);
    expect(container.envFrom.map((e) => e.secretRef.name)).toEqual([secret.metadata.name]);
  });

  it('cannot be applied with the Secret placeholders: the start names both', () => {
    const problems = settingsProblems({ ...env, ...secret.stringData });
    expect(problems.some((p) => p.startsWith('AISBREAKER_SECRET:'))).toBe(true);
    expect(problems.some((p) => p.startsWith('AISBREAKER_ADMIN_KEY:'))).toBe(true);
    expect(settingsProblems({ ...env, AISBREAKER_SECRET: TEST_SECRET, AISBREAKER_ADMIN_KEY: ADMIN_KEY })).toEqual([]);
  });

  it('mounts the ConfigMap where AISBREAKER_CONFIG points, and its config file passes the start check', () => {
    const path = env.AISBREAKER_CONFIG ?? '';
    const volume = pod.volumes.find((v) => v.configMap.name === configMap.metadata.name);
    const mount = container.volumeMounts.find((m) => m.name === volume?.name);
    expect(mount?.mountPath).toBe(dirname(path));
    const file = configMap.data[basename(path)];
    expect(file).toBeDefined();
    const tmp = mkdtempSync(join(tmpdir(), 'aisbgw-k8s-'));
    try {
      writeFileSync(join(tmp, 'config.json'), file ?? '');
      expect(configFileProblemsAtStart(join(tmp, 'config.json'))).toEqual([]);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('probes /readyz for readiness and /healthz for liveness on the port the gateway listens on', () => {
    const http = container.ports.find((p) => p.name === container.readinessProbe.httpGet.port);
    expect(String(http?.containerPort)).toBe(env.PORT);
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: http?.name });
    expect(service.spec.ports[0]?.targetPort).toBe(http?.name);
  });

  it('selects its pods, runs them as the image user, and lets streams drain before the kill', () => {
    expect(deployment.spec.replicas).toBeGreaterThan(1);
    expect(deployment.spec.template.metadata.labels).toMatchObject(deployment.spec.selector.matchLabels);
    expect(deployment.spec.template.metadata.labels).toMatchObject(service.spec.selector);
    // uid 1000 is the node images' `node` user, the Dockerfile's USER
    expect(pod.securityContext.runAsUser).toBe(1000);
    const preStopSeconds = Number(container.lifecycle.preStop.exec.command[1]);
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(preStopSeconds * 1000 + Number(env.SHUTDOWN_GRACE_MS));
  });
});

describe('systemd units (deploy/systemd)', () => {
  const plain = unitService(repoFile('deploy/systemd/aisbreaker-gateway.service'));
  const template = unitService(repoFile('deploy/systemd/aisbreaker-gateway@.service'));
  const hasSystemdAnalyze = existsSync('/usr/bin/systemd-analyze');
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'aisbgw-systemd-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** The environment systemd gives ExecStart: Environment= lines, then the env file over them. */
  function unitEnv(unit: Map<string, string[]>, file: Record<string, string>): Record<string, string> {
    const fromUnit = Object.fromEntries((unit.get('Environment') ?? []).map((e) => e.split(/=(.*)/s).slice(0, 2)));
    return { PATH: process.env.PATH ?? '', ...fromUnit, ...file };
  }

  it.skipIf(!hasSystemdAnalyze)('pass systemd-analyze verify', () => {
    copyFileSync(join(ROOT, 'deploy/systemd/aisbreaker-gateway.service'), join(dir, 'aisbreaker-gateway.service'));
    copyFileSync(join(ROOT, 'deploy/systemd/aisbreaker-gateway@.service'), join(dir, 'aisbreaker-gateway@.service'));
    for (const unit of ['aisbreaker-gateway.service', 'aisbreaker-gateway@.service']) {
      const run = spawnSync('systemd-analyze', ['verify', join(dir, unit)], { encoding: 'utf8' });
      expect(`${run.stdout}${run.stderr}`, unit).toBe('');
      expect(run.status, unit).toBe(0);
    }
  });

  it('write only into the state directory systemd creates for them', () => {
    for (const unit of [plain, template]) {
      expect(unit.get('ReadWritePaths')).toBeUndefined();
      expect(unit.get('DynamicUser')).toEqual(['yes']);
      expect(unit.get('ProtectSystem')).toEqual(['strict']);
    }
    expect(plain.get('Environment')).toContain(`AISBREAKER_DATA_DIR=/var/lib/${plain.get('StateDirectory')?.[0]}`);
  });

  it('the unit starts node from the PATH; without AISBREAKER_SECRET the secret lands in its data dir', async () => {
    const command = (plain.get('ExecStart')?.[0] ?? '').split(' ');
    expect(command[0]).toBe('/usr/bin/env');
    const dataDir = join(dir, 'state');
    // systemd creates the StateDirectory before the start; here a temporary one stands for it
    const env = { ...unitEnv(plain, { HOST: '127.0.0.1', PORT: '0' }), AISBREAKER_DATA_DIR: dataDir };
    const gateway = await GatewayProcess.run(command, { env, cwd: ROOT });
    expect(await gateway.stop()).toBe(0);
    expect(statSync(join(dataDir, 'secret')).mode & 0o777).toBe(0o600);
  });

  it('the template listens on its instance name as port, whatever the shared env file says', async () => {
    const port = await freePort();
    const command = (template.get('ExecStart')?.[0] ?? '').replaceAll('%i', String(port)).split(' ');
    const env = unitEnv(template, { HOST: '127.0.0.1', PORT: '1', AISBREAKER_SECRET: TEST_SECRET });
    const gateway = await GatewayProcess.run(command, { env, cwd: ROOT });
    try {
      expect(new URL(gateway.url).port).toBe(String(port));
      expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
    } finally {
      expect(await gateway.stop()).toBe(0);
    }
  });
});
