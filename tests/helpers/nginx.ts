import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.js';

/** The repository's nginx front (compose.yaml mounts it as nginx's conf.d/default.conf). */
export const NGINX_CONF = fileURLToPath(new URL('../../deploy/nginx/gateway.conf', import.meta.url));

/**
 * The repository's nginx config with its three `server gateway-N:3000` lines pointed at `upstreams`
 * (host:port) and `listen 80` at a free loopback port: everything else is the file as shipped.
 */
export function nginxSiteFor(upstreams: string[], port: number): string {
  const shipped = readFileSync(NGINX_CONF, 'utf8');
  const servers = shipped.match(/^\s*server gateway-\d:3000;$/gm) ?? [];
  if (servers.length !== upstreams.length) throw new Error(`expected ${upstreams.length} upstream servers in ${NGINX_CONF}, found ${servers.length}`);
  let site = shipped;
  servers.forEach((line, i) => (site = site.replace(line, `    server ${upstreams[i]};`)));
  if (!/^\s*listen 80;$/m.test(site)) throw new Error(`no "listen 80;" in ${NGINX_CONF}`);
  return site.replace(/^\s*listen 80;$/m, `    listen 127.0.0.1:${port};`);
}

/**
 * The main config nginx's image wraps a conf.d file in, reduced to what a non-daemon run in a
 * temporary prefix needs.
 */
function mainConfig(dir: string, site: string): string {
  writeFileSync(join(dir, 'site.conf'), site);
  return `pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
worker_processes 1;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${join(dir, 'body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  include ${join(dir, 'site.conf')};
}
`;
}

/** A real nginx (from the PATH or /usr/sbin) on a free loopback port in front of `upstreams`. */
export class TestNginx {
  private constructor(private readonly child: ChildProcess, private readonly dir: string, readonly url: string) {}

  static binary(): string {
    return process.env.NGINX_PATH ?? '/usr/sbin/nginx';
  }

  /** `nginx -t` on the shipped site: its exit code and output. */
  static check(upstreams: string[]): { code: number | null; output: string } {
    const dir = mkdtempSync(join(tmpdir(), 'aisbgw-nginx-'));
    try {
      const conf = join(dir, 'nginx.conf');
      writeFileSync(conf, mainConfig(dir, nginxSiteFor(upstreams, 8080)));
      const run = spawnSync(TestNginx.binary(), ['-t', '-p', dir, '-c', conf], { encoding: 'utf8' });
      return { code: run.status, output: `${run.stdout}${run.stderr}` };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  static async start(upstreams: string[]): Promise<TestNginx> {
    const dir = mkdtempSync(join(tmpdir(), 'aisbgw-nginx-'));
    const port = await freePort();
    const conf = join(dir, 'nginx.conf');
    writeFileSync(conf, mainConfig(dir, nginxSiteFor(upstreams, port)));
    const child = spawn(TestNginx.binary(), ['-p', dir, '-c', conf, '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const url = `http://127.0.0.1:${port}`;
    const started = Date.now();
    for (;;) {
      if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}: ${output}`);
      const up = await fetch(`${url}/healthz`).then(() => true, () => false);
      if (up) break;
      if (Date.now() - started > 10_000) {
        child.kill('SIGKILL');
        throw new Error(`nginx did not start: ${output}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return new TestNginx(child, dir, url);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      await new Promise<void>((resolve) => {
        this.child.once('exit', () => resolve());
        // SIGTERM: nginx's fast shutdown
        this.child.kill('SIGTERM');
      });
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
