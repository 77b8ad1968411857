import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import hashBatch, { unpackResults } from './hash-worker.js';
import { packPaths } from './path-batch.js';

const mkfifo = (path: string) => execFileSync('mkfifo', [path]);

describe('hashing worker batches', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-hw-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('pack and unpack every kind of result, with mixed algorithms, exactly', () => {
    writeFileSync(join(dir, 'a'), 'alpha');
    writeFileSync(join(dir, 'b'), 'bravo');
    writeFileSync(join(dir, 'big'), 'x'.repeat(100));
    const paths = [join(dir, 'a'), join(dir, 'b'), join(dir, 'gone'), dir, join(dir, 'big')].map((p) => Buffer.from(p));
    const results = unpackResults(
      hashBatch({ paths: packPaths(paths), algorithms: ['sha256', 'blake2b512', 'sha256', 'sha256', 'sha512'], maxBytes: [0, 0, 0, 0, 10], regular: [1, 1, 1, 1, 1], bytesPerSecond: 0 }),
    );
    const [a, b, gone, aDir, big] = results;
    assert.ok(a?.kind === 'hashed' && b?.kind === 'hashed' && big?.kind === 'hashed');
    assert.deepEqual(a.digest && Buffer.from(a.digest), createHash('sha256').update('alpha').digest());
    assert.deepEqual(b.digest && Buffer.from(b.digest), createHash('blake2b512').update('bravo').digest());
    assert.equal(a.stat.size, 5);
    assert.equal(a.bytes, 5);
    assert.equal(gone?.kind, 'vanished');
    assert.ok(aDir?.kind === 'state' && aDir.state.type === 'directory', 'a directory where a file was expected: its lstat state');
    assert.equal(big.digest, null, 'over its max size: stat only');
    assert.equal(big.stat.size, 100);
  });

  it('lstat only for what the walk saw as not regular, and for a file swapped for a symlink: never opened, never followed', () => {
    mkfifo(join(dir, 'fifo'));
    symlinkSync(join(dir, 'a'), join(dir, 'link'));
    symlinkSync(join(dir, 'a'), join(dir, 'was-file'));
    const paths = packPaths(['fifo', 'link', 'was-file'].map((n) => Buffer.from(join(dir, n))));
    // Opening the FIFO would block this thread: the test would hang instead of failing.
    const [fifo, link, wasFile] = unpackResults(hashBatch({ paths, algorithms: ['sha256', 'sha256', 'sha256'], maxBytes: [0, 0, 0], regular: [0, 0, 1], bytesPerSecond: 0 }));
    assert.ok(fifo?.kind === 'state' && fifo.state.type === 'fifo');
    assert.ok(link?.kind === 'state' && link.state.type === 'symlink');
    assert.deepEqual(link.state.symlinkTarget, Buffer.from(join(dir, 'a')));
    assert.ok(wasFile?.kind === 'state' && wasFile.state.type === 'symlink' && wasFile.state.sha256 === null);
  });
});
