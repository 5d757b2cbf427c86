import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './ports.js';

/**
 * A redis-server of the test's own, on a free loopback port, keeping nothing on disk; it can be
 * stopped, killed and restarted on the same port to simulate outages. With TEST_REDIS_URL set,
 * that server is used instead and never stopped or flushed (tests use random token ids, so they
 * do not collide with other data).
 */
export class TestRedis {
  private child: ChildProcess | undefined;
  private readonly dir = mkdtempSync(join(tmpdir(), 'aisbgw-redis-'));

  private constructor(readonly port: number, readonly external: string | undefined) {}

  static async start(): Promise<TestRedis> {
    const external = process.env.TEST_REDIS_URL;
    const redis = new TestRedis(external ? 0 : await freePort(), external);
    if (!external) await redis.startProcess();
    return redis;
  }

  get url(): string {
    return this.external ?? `redis://127.0.0.1:${this.port}`;
  }

  private async startProcess(): Promise<void> {
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      let output = '';
      const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${output}`)), 10_000);
      child.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited with ${code}: ${output}`));
      });
    });
    child.removeAllListeners('exit');
  }

  /** Stops the server (SIGKILL: an abrupt outage, as in a crash). */
  async kill(): Promise<void> {
    this.assertOwned();
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
    this.child = undefined;
  }

  /** Starts it again on the same port. */
  async restart(): Promise<void> {
    this.assertOwned();
    await this.kill();
    await this.startProcess();
  }

  /** Pauses the server process (SIGSTOP): a hung Redis that accepts nothing and answers nothing. */
  pause(): void {
    this.assertOwned();
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.assertOwned();
    this.child?.kill('SIGCONT');
  }

  /** A plain client for inspecting what the gateway stored. */
  client(): Redis {
    return new Redis(this.url, { lazyConnect: false, maxRetriesPerRequest: 1 });
  }

  async stop(): Promise<void> {
    if (!this.external) {
      this.resume();
      await this.kill();
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  private assertOwned(): void {
    if (this.external) throw new Error('this test needs a redis-server of its own (unset TEST_REDIS_URL)');
  }
}
