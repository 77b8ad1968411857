import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const fixture = fileURLToPath(new URL('../fixtures/scan-as-user.js', import.meta.url));

describe('a path the agent cannot read', () => {
  it('is reported with its error and the scan goes on', { skip: process.getuid?.() !== 0 && 'needs root to switch to an unprivileged user' }, () => {
    const root = mkdtempSync(join(tmpdir(), 'vigil-unreadable-'));
    try {
      chmodSync(root, 0o755);
      const watched = join(root, 'watched');
      mkdirSync(join(watched, 'locked-dir'), { recursive: true });
      writeFileSync(join(watched, 'readable.txt'), 'ok');
      writeFileSync(join(watched, 'secret.key'), 'top secret');
      writeFileSync(join(watched, 'locked-dir', 'inside'), 'x');
      chmodSync(join(watched, 'secret.key'), 0o600);
      chmodSync(join(watched, 'locked-dir'), 0o700);
      const state = join(root, 'state');
      mkdirSync(state);
      chownSync(state, 65534, 65534);
      const res = spawnSync(process.execPath, [fixture, watched, state], { uid: 65534, gid: 65534, cwd: '/', encoding: 'utf8', timeout: 30_000 });
      assert.equal(res.status, 0, res.stderr);
      const out = JSON.parse(res.stdout) as { summary: { filesScanned: number; errors: number }; deltas: { path: string; type: string; error: string | null; sha256: string | null }[] };
      const by = new Map(out.deltas.map((d) => [d.path, d]));
      assert.equal(by.get(join(watched, 'secret.key'))?.error, 'EACCES');
      assert.equal(by.get(join(watched, 'secret.key'))?.sha256, null);
      assert.equal(by.get(join(watched, 'readable.txt'))?.sha256, createHash('sha256').update('ok').digest('hex'), 'the scan went on');
      assert.equal(by.get(join(watched, 'locked-dir'))?.type, 'directory');
      assert.equal(by.get(join(watched, 'locked-dir'))?.error, 'EACCES');
      assert.ok(!by.has(join(watched, 'locked-dir', 'inside')), 'an unlistable directory is not entered');
      assert.equal(out.summary.errors, 2);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
