// `npm start`: run the gateway from dist/, compiling first only when a source is newer than the
// last build (then tsc --incremental, which compiles what changed). Right after `npm install`
// built it, nothing is compiled: even a no-op tsc run costs seconds of CPU. The gateway runs in
// this process, so the signals npm forwards (SIGTERM, SIGINT) reach it directly.
// @ts-check
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, utimesSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
const at = (path) => `${root}${path}`;

/** Newest modification time of the build's inputs. */
function newestInput() {
  const inputs = ['tsconfig.json', 'tsconfig.build.json', 'package.json'].map(at);
  for (const entry of readdirSync(at('src'), { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) inputs.push(`${entry.parentPath}/${entry.name}`);
  }
  return Math.max(...inputs.map((file) => statSync(file).mtimeMs));
}

const buildInfo = at('dist/.tsbuildinfo');
const current = existsSync(buildInfo) && existsSync(at('dist/main.js')) && statSync(buildInfo).mtimeMs >= newestInput();
if (!current) {
  let tsc;
  try {
    tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  } catch {
    // a production install (npm ci --omit=dev) has no compiler: run the build it came with
  }
  if (tsc) {
    console.error('npm start: sources changed since the last build: compiling');
    try {
      execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
      // tsc leaves its build info alone when an input was touched but nothing changed: mark this build current
      const now = new Date();
      utimesSync(buildInfo, now, now);
    } catch {
      console.error('npm start: the build failed (see above)');
      process.exit(1);
    }
  } else if (!existsSync(at('dist/main.js'))) {
    console.error('npm start: dist/main.js is missing and TypeScript is not installed: run `npm install` first');
    process.exit(1);
  }
}
await import(new URL('../dist/main.js', import.meta.url).href);
