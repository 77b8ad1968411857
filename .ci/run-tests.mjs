#!/usr/bin/env node
// Runs every compiled *.test.js under dist/ with node:test (Node 20 has no glob for --test).
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const files = readdirSync(dist, { withFileTypes: true, recursive: true })
  .filter((e) => e.isFile() && e.name.endsWith('.test.js'))
  .map((e) => join(e.parentPath ?? e.path, e.name))
  .filter((f) => !f.includes('/node_modules/'))
  .sort();
const filter = process.argv.slice(2);
const chosen = filter.length ? files.filter((f) => filter.some((x) => f.includes(x))) : files;
if (!chosen.length) {
  console.error(`no test file matches ${filter.join(', ')}`);
  process.exit(1);
}
const res = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...chosen], { stdio: 'inherit', cwd: root });
process.exit(res.status ?? 1);
