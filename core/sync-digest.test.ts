import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { FILE_TYPES, HASH_ALGORITHMS, type FileState } from './model.js';
import { addEntry, emptyRange, entryDigest, entryDigestLatin1, MAX_POSITION, MIN_POSITION, pathDigestLatin1, pathPosition, sameRange, splitRange } from './sync-digest.js';

/**
 * The entry digest as first written (one Buffer.alloc and a Hash object per entry): the encoding
 * agents and controllers of every version compare, kept here to hold the faster one to it.
 */
function referenceEntryDigest(path: Buffer, s: FileState): bigint {
  const content = s.sha256 ? { algorithm: 'sha256' as const, value: s.sha256 } : (s.digest ?? null);
  const error = s.error === null || s.error === undefined ? null : Buffer.from(s.error, 'utf8');
  const xattrs = s.xattrs ?? null;
  const target = s.symlinkTarget ?? null;
  const values = s.attrValues ?? null;
  const b = Buffer.alloc(
    1 + 4 + path.length + 1 + 8 + 4 * 4 + 8 * 3 + 2 + (content ? content.value.length : 0) + 4 + (target ? target.length : 0) + 2 + (error ? error.length : 0) + 1 + (xattrs ? xattrs.length : 0) + (values ? 4 + values.length : 0),
  );
  let o = b.writeUInt8(1, 0);
  o = b.writeUInt32BE(path.length, o);
  o += path.copy(b, o);
  o = b.writeUInt8(FILE_TYPES.indexOf(s.type), o);
  o = b.writeBigUInt64BE(BigInt(s.size), o);
  o = b.writeUInt32BE(s.mode >>> 0, o);
  o = b.writeUInt32BE(s.uid >>> 0, o);
  o = b.writeUInt32BE(s.gid >>> 0, o);
  o = b.writeUInt32BE(s.nlink >>> 0, o);
  o = b.writeBigInt64BE(s.mtimeNs, o);
  o = b.writeBigInt64BE(s.ctimeNs, o);
  o = b.writeBigUInt64BE(BigInt.asUintN(64, s.inode), o);
  o = b.writeUInt8(content ? HASH_ALGORITHMS.indexOf(content.algorithm) : 0xff, o);
  o = b.writeUInt8(content ? content.value.length : 0, o);
  if (content) o += content.value.copy(b, o);
  o = b.writeUInt32BE(target ? target.length : 0xffffffff, o);
  if (target) o += target.copy(b, o);
  o = b.writeUInt16BE(error ? error.length : 0xffff, o);
  if (error) o += error.copy(b, o);
  o = b.writeUInt8(xattrs ? xattrs.length : 0, o);
  if (xattrs) o += xattrs.copy(b, o);
  if (values) {
    o = b.writeUInt32BE(values.length, o);
    o += values.copy(b, o);
  }
  return createHash('sha256').update(b.subarray(0, o)).digest().readBigInt64BE(0);
}

const state: FileState = {
  type: 'regular',
  size: 5 * 2 ** 32 + 7,
  mode: 0o100644,
  uid: 1000,
  gid: 4294967294,
  mtimeNs: 1_700_000_000_123_456_789n,
  ctimeNs: -5n,
  inode: 2n ** 63n + 9n,
  nlink: 2,
  sha256: createHash('sha256').update('x').digest(),
  symlinkTarget: null,
  error: null,
  digest: null,
  xattrs: createHash('sha256').update('attrs').digest(),
};
const path = Buffer.from([0x2f, 0x74, 0xff, 0x0a, 0x80]); // '/t', then bytes that are not UTF-8

describe('sync digests', () => {
  it('places a path at the first 8 bytes of its SHA-256, signed', () => {
    const expected = createHash('sha256').update(path).digest().readBigInt64BE(0);
    assert.equal(pathPosition(path), expected);
    assert.ok(pathPosition(path) >= MIN_POSITION && pathPosition(path) <= MAX_POSITION);
  });

  it('digests exactly as the first encoding did, whatever the state holds', () => {
    const longPath = Buffer.concat([Buffer.from('/'), Buffer.alloc(4094, 0xe9)]);
    const variants: FileState[] = [
      state,
      { ...state, size: 0, mode: 0, uid: 0, gid: 0, nlink: 0, mtimeNs: -(2n ** 63n), ctimeNs: 2n ** 63n - 1n, inode: 0n, sha256: null, xattrs: null },
      { ...state, size: Number.MAX_SAFE_INTEGER, mode: 0xffffffff, uid: 0xffffffff, gid: 0xffffffff, nlink: 0x7fffffff, inode: 2n ** 64n - 1n },
      { ...state, type: 'symlink', sha256: null, symlinkTarget: Buffer.alloc(4096, 0x61) },
      { ...state, sha256: null, digest: { algorithm: 'sha512', value: createHash('sha512').update('x').digest() } },
      { ...state, sha256: null, error: 'EACCES: permission denied, naïve ünïcode ✓'.repeat(5) },
      { ...state, attrValues: Buffer.alloc(64 * 1024, 7) },
      { ...state, attrValues: Buffer.alloc(0), symlinkTarget: Buffer.alloc(0), error: '' },
      { ...state, type: 'unknown' },
    ];
    for (const p of [path, Buffer.from('/'), longPath, Buffer.from('/srv/<b>&"\'</b>')]) {
      for (const [i, v] of variants.entries()) {
        assert.equal(entryDigest(p, v), referenceEntryDigest(p, v), `variant ${i}, path of ${p.length} bytes`);
        assert.equal(Buffer.from(entryDigestLatin1(p, v), 'latin1').readBigInt64BE(0), entryDigest(p, v));
      }
      assert.deepEqual(Buffer.from(pathDigestLatin1(p), 'latin1'), createHash('sha256').update(p).digest());
    }
    // What no encoding can hold is refused, as before.
    assert.throws(() => entryDigest(path, { ...state, mtimeNs: 2n ** 63n }), RangeError);
    assert.throws(() => entryDigest(path, { ...state, size: -1 }), RangeError);
    // A large entry after small ones, and small ones after it: the encoding buffer is reused.
    assert.equal(entryDigest(path, state), referenceEntryDigest(path, state));
  });

  it('gives equal states the same digest, however the absent parts are spelled', () => {
    const fromPostgres: FileState = { ...state, symlinkTarget: null, digest: null, error: null };
    const fromAgent: FileState = { ...state };
    delete (fromAgent as { digest?: unknown }).digest;
    assert.equal(entryDigest(path, fromAgent), entryDigest(Buffer.from(path), fromPostgres));
    assert.equal(typeof entryDigest(path, state), 'bigint');
  });

  it('changes with the path and with every part of the state', () => {
    const base = entryDigest(path, state);
    const variants: [string, FileState][] = [
      ['type', { ...state, type: 'directory' }],
      ['size', { ...state, size: state.size + 1 }],
      ['mode', { ...state, mode: 0o100600 }],
      ['uid', { ...state, uid: 0 }],
      ['gid', { ...state, gid: 0 }],
      ['nlink', { ...state, nlink: 1 }],
      ['mtime', { ...state, mtimeNs: state.mtimeNs + 1n }],
      ['ctime', { ...state, ctimeNs: 0n }],
      ['inode', { ...state, inode: 9n }],
      ['content', { ...state, sha256: createHash('sha256').update('y').digest() }],
      ['no content', { ...state, sha256: null }],
      ['other algorithm', { ...state, sha256: null, digest: { algorithm: 'blake2b512', value: createHash('sha512').update('x').digest() } }],
      ['target', { ...state, symlinkTarget: Buffer.from('/etc') }],
      ['empty target', { ...state, symlinkTarget: Buffer.alloc(0) }],
      ['error', { ...state, error: 'EACCES' }],
      ['empty error', { ...state, error: '' }],
      ['xattrs', { ...state, xattrs: null }],
      ['named attribute values', { ...state, attrValues: Buffer.from('acl') }],
      ['none of the named attributes set', { ...state, attrValues: Buffer.alloc(0) }],
    ];
    const seen = new Set([base]);
    for (const [what, v] of variants) {
      const d = entryDigest(path, v);
      assert.notEqual(d, base, what);
      seen.add(d);
    }
    assert.equal(seen.size, variants.length + 1, 'every variant has its own digest');
    assert.notEqual(entryDigest(Buffer.from('/t'), state), base, 'path');
  });

  it('sums a range as a count and an order-free XOR', () => {
    const digests = ['/a', '/b', '/c'].map((p) => entryDigest(Buffer.from(p), state));
    const forward = emptyRange();
    const backward = emptyRange();
    digests.forEach((d) => addEntry(forward, d));
    [...digests].reverse().forEach((d) => addEntry(backward, d));
    assert.ok(sameRange(forward, backward));
    assert.equal(forward.count, 3);
    const fewer = emptyRange();
    digests.slice(0, 2).forEach((d) => addEntry(fewer, d));
    assert.ok(!sameRange(forward, fewer));
    assert.ok(forward.xor >= MIN_POSITION && forward.xor <= MAX_POSITION);
  });

  it('splits a range into parts that cover it exactly, without overlap', () => {
    for (const [start, end, parts] of [
      [MIN_POSITION, MAX_POSITION, 256],
      [-10n, 10n, 4],
      [5n, 7n, 256],
      [3n, 3n, 2],
    ] as const) {
      const ranges = splitRange(start, end, parts);
      assert.equal(ranges[0]![0], start);
      assert.equal(ranges[ranges.length - 1]![1], end);
      for (let i = 1; i < ranges.length; i++) assert.equal(ranges[i]![0], ranges[i - 1]![1] + 1n);
      for (const [a, b] of ranges) assert.ok(a <= b);
      assert.equal(ranges.length, Math.min(parts, Number(end - start + 1n)));
    }
    assert.throws(() => splitRange(2n, 1n, 2), RangeError);
  });
});
