#!/usr/bin/env node
// Fails when proto/gen is stale: regenerates the code from proto/ into a temporary directory
// with the pinned buf and protoc-gen-es, and compares it file by file with what is committed.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = mkdtempSync(join(tmpdir(), 'vigil-gen-'));
const list = (dir) =>
  readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath ?? e.path, e.name)))
    .sort();
try {
  execFileSync(join(root, 'node_modules/.bin/buf'), ['generate', 'proto', '--template', 'proto/buf.gen.yaml', '-o', out], { cwd: root, stdio: 'inherit' });
  const fresh = list(join(out, 'gen'));
  const committed = list(join(root, 'proto/gen'));
  const stale = [...new Set([...fresh, ...committed])].filter((f) => {
    try {
      return !readFileSync(join(out, 'gen', f)).equals(readFileSync(join(root, 'proto/gen', f)));
    } catch {
      return true;
    }
  });
  if (stale.length) {
    console.error(`proto/gen is stale (run \`npm run gen\` and commit): ${stale.join(', ')}`);
    process.exit(1);
  }
  console.log(`proto/gen is up to date (${fresh.length} files)`);
} finally {
  rmSync(out, { recursive: true, force: true });
}
