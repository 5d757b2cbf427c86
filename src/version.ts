import { readFileSync } from 'node:fs';

/** Name and version from package.json (one level above both src/ and dist/). */
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { name: string; version: string };

export const PRODUCT_NAME = pkg.name;
export const PRODUCT_VERSION = pkg.version;
