import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readMountPoints, unescapeMountPath } from './mount-points.js';

describe('mount points', () => {
  it('reads the mount point field and undoes the kernel escapes, bytes kept as they are', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-mounts-'));
    try {
      const file = join(dir, 'mountinfo');
      writeFileSync(
        file,
        Buffer.concat([
          Buffer.from('22 27 0:21 / /proc rw,relatime - proc proc rw\n'),
          Buffer.from('40 27 0:40 / /mnt/with\\040space\\012nl rw - tmpfs none rw\n'),
          Buffer.from('41 27 0:41 / /mnt/'),
          Buffer.from([0xff]),
          Buffer.from(' rw - tmpfs none rw\n'),
        ]),
      );
      const points = readMountPoints(file);
      assert.ok(points?.has('/proc'));
      assert.ok(points?.has('/mnt/with space\nnl'));
      assert.ok(points?.has(Buffer.from([0x2f, 0x6d, 0x6e, 0x74, 0x2f, 0xff]).toString('latin1')));
      assert.equal(points?.size, 3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is null when the list cannot be read (the scan then stats every directory)', () => {
    assert.equal(readMountPoints('/nonexistent/mountinfo'), null);
    assert.equal(unescapeMountPath('/a\\134b'), '/a\\b');
  });
});
