import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, mkdtempSync, openSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { encodeState } from '../store/state-codec.js';
import { readStatStateSync } from '../file-state.js';
import hashBatch, { compareBatch, DIFFERENT, GONE, hashDescriptor, LSTAT_FIRST, SAME, unpackResults } from './hash-worker.js';
import { packPaths } from './path-batch.js';
import { setXattr } from '../../test/support/xattrs.js';

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
      hashBatch({ paths: packPaths(paths), algorithms: ['sha256', 'blake2b512', 'sha256', 'sha256', 'sha512'], maxBytes: [0, 0, 0, 0, 10], regular: [1, 1, 1, 1, 1], xattrs: [0, 0, 0, 0, 0], bytesPerSecond: 0 }),
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
    const [fifo, link, wasFile] = unpackResults(hashBatch({ paths, algorithms: ['sha256', 'sha256', 'sha256'], maxBytes: [0, 0, 0], regular: [0, 0, 1], xattrs: [0, 0, 0], bytesPerSecond: 0 }));
    assert.ok(fifo?.kind === 'state' && fifo.state.type === 'fifo');
    assert.ok(link?.kind === 'state' && link.state.type === 'symlink');
    assert.deepEqual(link.state.symlinkTarget, Buffer.from(join(dir, 'a')));
    assert.ok(wasFile?.kind === 'state' && wasFile.state.type === 'symlink' && wasFile.state.sha256 === null);
  });

  it('reads extended attributes where the rule asks, once per batch, digested as documented', () => {
    const file = join(dir, 'with-xattr');
    writeFileSync(file, 'x');
    setXattr(file, 'user.vigil', 'v1');
    const paths = packPaths([Buffer.from(file), Buffer.from(dir), Buffer.from(file)]);
    const [hashed, directory, notAsked] = unpackResults(
      hashBatch({ paths, algorithms: ['sha256', 'sha256', 'sha256'], maxBytes: [0, 0, 0], regular: [1, 0, 1], xattrs: [1, 1, 0], bytesPerSecond: 0 }),
    );
    // Independently: SHA-256 over (u32 BE name length, name, u32 BE value length, value).
    const u32 = (n: number) => Buffer.from([0, 0, 0, n]);
    const expected = createHash('sha256').update(Buffer.concat([u32(10), Buffer.from('user.vigil'), u32(2), Buffer.from('v1')])).digest();
    assert.ok(hashed?.kind === 'hashed');
    assert.deepEqual(hashed.xattrs, expected);
    assert.ok(directory?.kind === 'state');
    assert.deepEqual(directory.state.xattrs, createHash('sha256').digest(), 'no attributes: the digest of the empty list');
    assert.ok(notAsked?.kind === 'hashed');
    assert.equal(notAsked.xattrs ?? null, null, 'not asked: not read');
  });

  it('reads a real-time batch with an lstat first: regular files hashed, nothing else opened; and a held descriptor', () => {
    writeFileSync(join(dir, 'live'), 'live');
    mkfifo(join(dir, 'live-fifo'));
    const paths = packPaths(['live', 'live-fifo', 'live-gone', '.'].map((n) => Buffer.from(join(dir, n))));
    const all = <T>(v: T) => [v, v, v, v];
    // Opening the FIFO would block this thread: the test would hang instead of failing.
    const [live, fifo, gone, aDir] = unpackResults(hashBatch({ paths, algorithms: all('sha256'), maxBytes: all(0), regular: all(LSTAT_FIRST), xattrs: all(0), bytesPerSecond: 0 }));
    assert.ok(live?.kind === 'hashed');
    assert.deepEqual(Buffer.from(live.digest!), createHash('sha256').update('live').digest());
    assert.ok(fifo?.kind === 'state' && fifo.state.type === 'fifo');
    assert.equal(gone?.kind, 'vanished');
    assert.ok(aDir?.kind === 'state' && aDir.state.type === 'directory');
    const fd = openSync(join(dir, 'live'), 'r');
    try {
      const [held] = unpackResults(hashDescriptor({ fd, algorithm: 'sha512', maxBytes: 0, bytesPerSecond: 0 }));
      assert.ok(held?.kind === 'hashed');
      assert.deepEqual(Buffer.from(held.digest!), createHash('sha512').update('live').digest());
    } finally {
      closeSync(fd);
    }
  });

  it('compares lstat with the encoded baseline: same, different, gone, and never same for an error or another algorithm', () => {
    const paths = ['same', 'touched', 'chmod', 'gone', 'errored', 'other-algo', 'replaced'].map((n) => join(dir, 'cmp-' + n));
    for (const p of paths) writeFileSync(p, 'content');
    const known = paths.map((p) => readStatStateSync(Buffer.from(p))!);
    // Make the states say what the baseline would: hashed with sha256, one with an error, one with blake2b512.
    const encoded = known.map((k, i) =>
      encodeState({ ...k, sha256: i === 5 ? null : Buffer.alloc(32, 1), digest: i === 5 ? { algorithm: 'blake2b512', value: Buffer.alloc(64, 2) } : null, error: i === 4 ? 'EACCES' : null }),
    );
    writeFileSync(paths[1]!, 'content, longer');
    chmodSync(paths[2]!, 0o600);
    unlinkSync(paths[3]!);
    writeFileSync(paths[6]! + '.new', 'content');
    renameSync(paths[6]! + '.new', paths[6]!); // another inode
    const verdicts = compareBatch({
      paths: packPaths(paths.map((p) => Buffer.from(p))),
      known: packPaths(encoded),
      algorithms: paths.map(() => 'sha256'),
    });
    assert.deepEqual([...verdicts], [SAME, DIFFERENT, DIFFERENT, GONE, DIFFERENT, DIFFERENT, DIFFERENT]);
    const trusting = compareBatch({ paths: packPaths([Buffer.from(paths[5]!)]), known: packPaths([encoded[5]!]), algorithms: [''] });
    assert.deepEqual([...trusting], [SAME], 'a rule with max_hash_size trusts any digest');
  });
});
