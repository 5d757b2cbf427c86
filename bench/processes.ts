import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** A server the benchmark started in a process of its own. */
export interface BenchProcess {
  port: number;
  pid: number;
  /** peak resident memory so far (VmHWM), in MB */
  peakRssMb(): number;
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
