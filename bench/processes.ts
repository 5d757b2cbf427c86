import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's CPU times (USER_HZ, 100 on Linux almost always). */
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** A server the benchmark started in a process of its own. */
export interface BenchProcess {
  port: number;
  pid: number;
  /** peak resident memory so far (VmHWM), in MB */
  peakRssMb(): number;
  /** CPU time the process has used so far (user + system), in ms */
  cpuMs(): number;
  stop(): Promise<void>;
}

/**
 * Starts `node <args>` and waits for its port: benchmark servers print {"listening":port}, the
 * gateway logs its address with "aisbreaker-gateway listening". Its other output is dropped.
 */
export async function startProcess(args: string[], env: Record<string, string> = {}): Promise<BenchProcess> {
  const child: ChildProcess = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let seen = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args.join(' ')} did not start:\n${seen}`)), 20_000);
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString();
      const match = /"listening":(\d+)/.exec(seen) ?? /"port":(\d+)[^\n]*aisbreaker-gateway listening/.exec(seen);
      if (match?.[1]) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.stdout?.resume(); // keep draining: a full pipe would block the server
        resolve(Number(match[1]));
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => (seen += chunk.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${args.join(' ')} exited with ${code}:\n${seen}`));
    });
  });
  child.removeAllListeners('exit');
  const pid = child.pid ?? 0;
  return {
    port,
    pid,
    cpuMs: () => {
      // /proc/<pid>/stat: fields 14 and 15 (utime, stime) in clock ticks, after the parenthesized name
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
      return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
    },
    peakRssMb: () => {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
      return kb / 1024;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}

/** `node --import tsx <file>` for the TypeScript benchmark servers. */
export function tsxArgs(file: string): string[] {
  return ['--import', 'tsx', file];
}
