import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { walkSorted } from './walker.js';

const everything = { include: () => true, enter: () => true };

describe('walkSorted', () => {
  // ext2 without the filetype feature lists every entry with an unknown type (like XFS without
  // ftype, or some NFS and FUSE mounts), so Node must lstat each one. Needs root and a loop device.
  it('lists a file system that gives no entry types, names as bytes', (t) => {
    const base = mkdtempSync(join(tmpdir(), 'vigil-notype-'));
    const image = join(base, 'fs.img');
    const mnt = join(base, 'mnt');
    mkdirSync(mnt);
    let mounted = false;
    try {
      writeFileSync(image, '');
      truncateSync(image, 8 << 20);
      try {
        execFileSync('mke2fs', ['-q', '-t', 'ext2', '-O', '^filetype', '-F', image], { stdio: 'ignore' });
        execFileSync('mount', ['-o', 'loop', image, mnt], { stdio: 'ignore' });
        mounted = true;
      } catch {
        t.skip('cannot make and mount an ext2 image here (needs mke2fs, root and a loop device)');
        return;
      }
      mkdirSync(join(mnt, 'dir'));
      writeFileSync(join(mnt, 'dir', 'file'), 'x');
      writeFileSync(Buffer.concat([Buffer.from(join(mnt, 'dir', 'odd')), Buffer.from([0xff, 0x0a])]), 'y');
      symlinkSync('dir/file', join(mnt, 'link'));
      const seen = [...walkSorted(Buffer.from(mnt), everything)].map((e) => [e.path.subarray(mnt.length).toString('latin1'), e.type]);
      assert.deepEqual(seen, [
        ['', 'directory'],
        ['/dir', 'directory'],
        ['/dir/file', 'regular'],
        ['/dir/odd\u00ff\n', 'regular'],
        ['/link', 'symlink'],
        ['/lost+found', 'directory'],
      ]);
    } finally {
      if (mounted) execFileSync('umount', [mnt]);
      rmSync(base, { recursive: true, force: true });
    }
  });
});
