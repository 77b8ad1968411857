#!/usr/bin/env node
// `npm start`: builds (npm run build) only when a source is newer than the last build, so a
// second start takes seconds instead of a full TypeScript and native build. `npm run build` ends
// with `build-if-stale.mjs --stamp`, which writes dist/.built; sources are the TypeScript, the
// native addon's C and the configs.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const stamp = join(root, 'dist', '.built');
const SOURCE = /\.(ts|cts|mts|c|h|gyp|json)$/;

/** The newest modification time of the sources under dir (node_modules, dist and build output skipped). */
function newest(dir) {
  let latest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name === 'dist' || e.name === 'build' || e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) latest = Math.max(latest, newest(p));
    else if (SOURCE.test(e.name)) latest = Math.max(latest, statSync(p).mtimeMs);
  }
  return latest;
}

// `--stamp`: the last step of `npm run build`, which has just built everything.
if (process.argv.includes('--stamp')) {
  writeFileSync(stamp, `${new Date().toISOString()}\n`);
  process.exit(0);
}
const sources = Math.max(...['agent', 'controller', 'core', 'pki', 'proto', 'test'].map((d) => newest(join(root, d))), ...['package.json', 'package-lock.json', 'tsconfig.json'].map((f) => statSync(join(root, f)).mtimeMs));
if (existsSync(stamp) && statSync(stamp).mtimeMs >= sources && existsSync(join(root, 'agent/native/build/Release/vigil_native.node'))) process.exit(0);
process.stderr.write('building (sources changed since the last build)...\n');
const res = spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
process.exit(res.status ?? 1);
