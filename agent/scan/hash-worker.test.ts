import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, statSync, truncateSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { encodeState } from '../store/state-codec.js';
import { readStatStateSync } from '../file-state.js';
import hashBatch, { compareBatch, DIFFERENT, GONE, hashOne, SAME, unpackResults } from './hash-worker.js';
import { packPaths } from './path-batch.js';
import { waitFor } from '../../test/support/processes.js';
import { HUGE_SIZE, hugeSparseFile } from '../../test/support/sparse-files.js';
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

  it('reads every byte to the end, whatever the size fstat gives (0 on procfs)', () => {
    const sizes = [0, 1, 256 * 1024 - 1, 256 * 1024, 256 * 1024 + 1, 3 * 256 * 1024];
    for (const size of sizes) {
      const p = join(dir, `sized-${size}`);
      writeFileSync(p, Buffer.alloc(size, size % 251));
      const r = hashOne(Buffer.from(p), 'sha256', 0);
      assert.ok(r.kind === 'hashed', `${size}: ${r.kind}`);
      assert.equal(r.bytes, size);
      assert.deepEqual(Buffer.from(r.digest!), createHash('sha256').update(Buffer.alloc(size, size % 251)).digest(), `digest of ${size} bytes`);
    }
    // A sparse file: its holes read as zeros.
    const sparse = join(dir, 'sparse');
    writeFileSync(sparse, '');
    truncateSync(sparse, 5 << 20);
    const s = hashOne(Buffer.from(sparse), 'sha256', 0);
    assert.ok(s.kind === 'hashed' && s.bytes === 5 << 20);
    assert.deepEqual(Buffer.from(s.digest!), createHash('sha256').update(Buffer.alloc(5 << 20)).digest());
    const proc = '/proc/self/cmdline';
    assert.equal(statSync(proc).size, 0, 'procfs reports size 0');
    const r = hashOne(Buffer.from(proc), 'sha256', 0);
    assert.ok(r.kind === 'hashed');
    const content = readFileSync(proc);
    assert.ok(content.length > 0);
    assert.equal(r.bytes, content.length);
    assert.deepEqual(Buffer.from(r.digest!), createHash('sha256').update(content).digest());
  });

  it('streams a sparse file over 4 GiB in the scan path, in flat memory', (t) => {
    const big = hugeSparseFile(t, dir);
    const before = process.memoryUsage().rss;
    const r = hashOne(Buffer.from(big), 'sha256', 0);
    const grown = process.memoryUsage().rss - before;
    assert.ok(r.kind === 'hashed');
    assert.equal(r.bytes, HUGE_SIZE);
    assert.equal(r.stat.size, HUGE_SIZE);
    // SHA-256 of as many zeros, fed from memory (no file, no read loop).
    const zeros = Buffer.alloc(1 << 24);
    const expected = createHash('sha256');
    for (let left = HUGE_SIZE; left > 0; left -= zeros.length) expected.update(left >= zeros.length ? zeros : zeros.subarray(0, left));
    assert.deepEqual(Buffer.from(r.digest!), expected.digest());
    assert.ok(grown < 64 * 1024 * 1024, `RSS grew by ${grown} bytes`);
  });

  it('a file that never stops growing is read three times at most, and read again by the next re-check', async () => {
    const grow = join(dir, 'growing');
    writeFileSync(grow, Buffer.alloc(32 << 20, 1));
    // Another process appends without pause while the file is read (three tries).
    const writer = spawn('sh', ['-c', `while :; do printf x >> '${grow}'; done`], { stdio: 'ignore' });
    try {
      await waitFor('the writer to append', () => statSync(grow).size > 32 << 20, 10_000, 5);
      const r = hashOne(Buffer.from(grow), 'sha256', 0);
      assert.ok(r.kind === 'hashed');
      writer.kill('SIGKILL');
      await new Promise((resolve) => writer.once('exit', resolve));
      const state = encodeState({ ...readStatStateSync(Buffer.from(grow))!, ...r.stat, sha256: Buffer.from(r.digest!) });
      assert.ok(r.stat.size < statSync(grow).size, 'the recorded size is from before a read, not the final one');
      const [verdict] = compareBatch({ paths: packPaths([Buffer.from(grow)]), known: packPaths([state]), algorithms: ['sha256'] });
      assert.equal(verdict, DIFFERENT, 'the next re-check reads it again');
    } finally {
      writer.kill('SIGKILL');
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
