// The compiled tree (dist/) the fleet benchmark runs against: `npm run build` first.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DIST = join(ROOT, 'dist');

/** Imports a module of dist/ by its path there (e.g. 'pki/index.js'). */
export async function distImport(rel) {
  const file = join(DIST, rel);
  if (!existsSync(file)) throw new Error(`dist/${rel} is missing: run \`npm run build\` first`);
  return import(pathToFileURL(file).href);
}
