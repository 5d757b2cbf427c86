import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TEST_SECRET } from './gateway.js';

const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

/** The built gateway (dist/main.js, as `npm start` runs it) in a process of its own. */
export class GatewayProcess {
  readonly output: string[] = [];

  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
    /** signals go to the whole process group, as a terminal's Ctrl-C does (npm start: npm, sh, node) */
    private readonly group: boolean,
  ) {}

  static async start(env: Record<string, string>): Promise<GatewayProcess> {
    return GatewayProcess.run([process.execPath, MAIN], {
      env: {
        PATH: process.env.PATH ?? '',
        AISBREAKER_SECRET: TEST_SECRET,
        HOST: '127.0.0.1',
        PORT: '0',
        API_MINT_LIMITS: 'off',
        API_AUTH_FAILURE_LIMITS: 'off',
        ...env,
      },
    });
  }

  /**
   * Any command line that ends up running the gateway (a Dockerfile's CMD, a systemd ExecStart),
   * with exactly this environment, resolved once it logs that it listens.
   */
  static async run(command: string[], options: { env: Record<string, string>; cwd?: string; group?: boolean }): Promise<GatewayProcess> {
    const [program = '', ...args] = command;
    const group = options.group ?? false;
    const child = spawn(program, args, { env: options.env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: group });
    const kill = (signal: NodeJS.Signals): void => {
      if (group && child.pid !== undefined) process.kill(-child.pid, signal);
      else child.kill(signal);
    };
    const output: string[] = [];
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        // a gateway that never came up must not outlive the test
        kill('SIGKILL');
        reject(new Error(`gateway did not start:\n${output.join('\n')}`));
      }, 15_000);
      child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
        for (const line of chunk.split('\n').filter(Boolean)) {
          output.push(line);
          const match = /"port":(\d+)[^\n]*aisbreaker-gateway listening/.exec(line);
          if (match?.[1]) {
            clearTimeout(timer);
            resolve(Number(match[1]));
          }
        }
      });
      child.stderr?.setEncoding('utf8').on('data', (chunk: string) => output.push(chunk));
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`gateway exited with ${code}:\n${output.join('\n')}`));
      });
    });
    child.removeAllListeners('exit');
    const gw = new GatewayProcess(child, `http://127.0.0.1:${port}`, group);
    gw.output.push(...output);
    child.stdout?.on('data', (chunk: string) => gw.output.push(...chunk.split('\n').filter(Boolean)));
    return gw;
  }

  /** Sends a signal and resolves with the exit code. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode !== null) return this.child.exitCode;
    return new Promise((resolve) => {
      this.child.once('exit', (code) => resolve(code));
      if (this.group && this.child.pid !== undefined) process.kill(-this.child.pid, signal);
      else this.child.kill(signal);
    });
  }
}
