import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import { Cluster, Redis } from 'ioredis';
import { freePort } from './ports.js';

const run = promisify(execFile);

/** Redis 7 takes the cluster bus port as a setting; before it, the bus is always port + 10000. */
async function busPortSetting(): Promise<boolean> {
  const { stdout } = await run('redis-server', ['--version']);
  const major = Number(/v=(\d+)\./.exec(stdout)?.[1] ?? '0');
  return major >= 7;
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

interface ClusterNode {
  /** client port */
  port: number;
  /** cluster bus port (set explicitly on Redis 7+: port + 10000 may be taken or out of range) */
  busPort: number;
  /** keeps nodes.conf, so a restarted node rejoins with its id and slots */
  dir: string;
  child: ChildProcess | undefined;
}

/**
 * A real local Redis Cluster of the test's own: `masters` (>= 3) `redis-server --cluster-enabled
 * yes` nodes on free loopback ports, in a temp dir, joined by `redis-cli --cluster create`, no
 * replicas and nothing persisted but each node's nodes.conf. A node can be killed and started again
 * on the same ports (it rejoins with its slots, its data gone, as after a crash). Never touches a
 * Redis it did not start.
 */
export class TestRedisCluster {
  private constructor(
    readonly nodes: ClusterNode[],
    private readonly root: string,
    private readonly settableBus: boolean,
  ) {}

  static async start(masters = 3): Promise<TestRedisCluster> {
    if (masters < 3) throw new Error('a Redis Cluster needs at least three masters');
    const root = mkdtempSync(join(tmpdir(), 'aisbgw-cluster-'));
    const nodes: ClusterNode[] = [];
    const used = new Set<number>();
    const port = async (): Promise<number> => {
      for (;;) {
        const p = await freePort();
        if (!used.has(p)) {
          used.add(p);
          return p;
        }
      }
    };
    const settableBus = await busPortSetting();
    for (let i = 0; i < masters; i++) {
      const dir = join(root, `node-${i}`);
      mkdirSync(dir);
      if (settableBus) {
        nodes.push({ port: await port(), busPort: await port(), dir, child: undefined });
        continue;
      }
      // Redis 6: a free port whose port + 10000 is free too
      for (;;) {
        const p = 20_000 + Math.floor(Math.random() * 35_000);
        if (!used.has(p) && !used.has(p + 10_000) && (await isFree(p)) && (await isFree(p + 10_000))) {
          used.add(p).add(p + 10_000);
          nodes.push({ port: p, busPort: p + 10_000, dir, child: undefined });
          break;
        }
      }
    }
    const cluster = new TestRedisCluster(nodes, root, settableBus);
    try {
      await Promise.all(nodes.map((node) => cluster.spawnNode(node)));
      await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], {
        timeout: 20_000,
      });
      await cluster.waitUntilHealthy();
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /** The REDIS_CLUSTER_NODES setting for this cluster. */
  get nodesSetting(): string {
    return this.nodes.map((n) => `127.0.0.1:${n.port}`).join(',');
  }

  private async spawnNode(node: ClusterNode): Promise<void> {
    // prettier-ignore
    const args = [
      '--port', String(node.port), ...(this.settableBus ? ['--cluster-port', String(node.busPort)] : []), '--bind', '127.0.0.1',
      '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '1000',
      '--dir', node.dir, '--save', '', '--appendonly', 'no',
    ];
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    node.child = child;
    await new Promise<void>((resolve, reject) => {
      let output = '';
      const timer = setTimeout(() => reject(new Error(`redis-server (cluster node ${node.port}) did not start: ${output}`)), 10_000);
      child.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server (cluster node ${node.port}) exited with ${code}: ${output}`));
      });
    });
    child.removeAllListeners('exit');
  }

  /** Sends one command to one node and returns its reply. */
  async command(index: number, ...args: string[]): Promise<unknown> {
    const node = this.node(index);
    const client = new Redis({ port: node.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => {});
    try {
      await client.connect();
      const [command, ...rest] = args;
      return await client.call(command ?? 'PING', ...rest);
    } finally {
      client.disconnect();
    }
  }

  /** Resolves once every running node reports cluster_state:ok with all slots covered and all nodes known. */
  async waitUntilHealthy(timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      const infos = await Promise.all(this.nodes.map((_, i) => this.command(i, 'CLUSTER', 'INFO').then(String, (err: Error) => err.message)));
      const healthy = infos.every(
        (info) => info.includes('cluster_state:ok') && info.includes('cluster_slots_ok:16384') && info.includes(`cluster_known_nodes:${this.nodes.length}`),
      );
      if (healthy) return;
      last = infos.join('\n---\n');
      if (Date.now() > deadline) throw new Error(`the Redis Cluster did not become healthy:\n${last}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** The index of the node that serves `key` (by CLUSTER KEYSLOT and CLUSTER SLOTS). */
  async nodeForKey(key: string): Promise<number> {
    const slot = await this.slotOf(key);
    const slots = (await this.command(this.firstRunning(), 'CLUSTER', 'SLOTS')) as [number, number, [string, number, ...unknown[]], ...unknown[]][];
    for (const [from, to, [, port]] of slots) {
      if (slot >= from && slot <= to) {
        const index = this.nodes.findIndex((n) => n.port === port);
        if (index >= 0) return index;
      }
    }
    throw new Error(`no node serves slot ${slot}`);
  }

  async slotOf(key: string): Promise<number> {
    return Number(await this.command(this.firstRunning(), 'CLUSTER', 'KEYSLOT', key));
  }

  /** Every key on node `index` that matches `pattern`. */
  async keysOn(index: number, pattern: string): Promise<string[]> {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = (await this.command(index, 'SCAN', cursor, 'MATCH', pattern, 'COUNT', '1000')) as [string, string[]];
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
    return keys;
  }

  /** SIGKILL: the node is gone at once, as in a crash. */
  async killNode(index: number): Promise<void> {
    const node = this.node(index);
    const child = node.child;
    node.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  /** Starts a killed node again on its ports; it rejoins with its slots (and no data). */
  async startNode(index: number): Promise<void> {
    const node = this.node(index);
    if (node.child) return;
    await this.spawnNode(node);
  }

  /** A cluster client for inspecting what the gateway stored. */
  client(): Cluster {
    const cluster = new Cluster(
      this.nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
      { redisOptions: { maxRetriesPerRequest: 1 } },
    );
    cluster.on('error', () => {});
    return cluster;
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((_, i) => this.killNode(i)));
    rmSync(this.root, { recursive: true, force: true });
  }

  private node(index: number): ClusterNode {
    const node = this.nodes[index];
    if (!node) throw new Error(`no cluster node ${index}`);
    return node;
  }

  private firstRunning(): number {
    const index = this.nodes.findIndex((n) => n.child !== undefined);
    if (index < 0) throw new Error('no cluster node is running');
    return index;
  }
}
