// `npm start`: build what changed since the last build (tsc --incremental: nothing, in a second or
// two, right after `npm install` built it), then run the gateway in this process, so the signals
// npm forwards (SIGTERM, SIGINT) reach it directly.
// @ts-check
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

const root = new URL('../', import.meta.url);
let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  // a production install (npm ci --omit=dev) has no compiler: run the build it came with
}
if (tsc) {
  try {
    execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
  } catch {
    console.error('npm start: the build failed (see above)');
    process.exit(1);
  }
} else if (!existsSync(new URL('dist/main.js', root))) {
  console.error('npm start: dist/main.js is missing and TypeScript is not installed: run `npm install` first');
  process.exit(1);
}
await import(new URL('dist/main.js', root).href);
