import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DIFFERENT, GONE, SAME, recheckListed, recheckOne } from './hash-worker.js';
import { nativeListing, type ListDirectory } from './listing.js';
import { SLOT_DEV, SLOT_ERRNO, SLOT_MODE, SLOT_NLINK, STAT_SLOTS } from '../native/stat-slots.js';
import { encodeState } from '../store/state-codec.js';
import { readStatStateSync } from '../file-state.js';
import { walkSorted } from './walker.js';

const everything = { include: () => true, enter: () => true };
const native = nativeListing();
/** Both ways of listing: the native listing (with stat fields) and readdir. */
const listings: [string, ListDirectory | null][] = [
  ['native listing', native],
  ['readdir', null],
];

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
      for (const [name, listDirectory] of listings) {
        const seen = [...walkSorted(Buffer.from(mnt), { ...everything, listDirectory })].map((e) => [e.path.subarray(mnt.length).toString('latin1'), e.type]);
        assert.deepEqual(seen, [
        ['', 'directory'],
        ['/dir', 'directory'],
        ['/dir/file', 'regular'],
        ['/dir/odd\u00ff\n', 'regular'],
        ['/link', 'symlink'],
        ['/lost+found', 'directory'],
        ], name);
      }
    } finally {
      if (mounted) execFileSync('umount', [mnt]);
      rmSync(base, { recursive: true, force: true });
    }
  });
});

describe('native listing', () => {
  let base: string;
  let server: ReturnType<typeof createServer> | undefined;
  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'vigil-listing-'));
    mkdirSync(join(base, 'd', 'sub'), { recursive: true });
    writeFileSync(join(base, 'd', 'file'), 'x');
    writeFileSync(Buffer.concat([Buffer.from(join(base, 'd', 'odd')), Buffer.from([0xff, 0x0a, 0x80])]), 'odd name');
    writeFileSync(join(base, 'd', 'B-upper'), '');
    symlinkSync('loop-b', join(base, 'd', 'loop-a'));
    symlinkSync('loop-a', join(base, 'd', 'loop-b'));
    symlinkSync('sub', join(base, 'd', 'to-sub'));
    execFileSync('mkfifo', [join(base, 'd', 'fifo')]);
    server = createServer();
    await new Promise<void>((resolve) => server!.listen(join(base, 'd', 'sock'), resolve));
  });
  after(() => {
    server?.close();
    rmSync(base, { recursive: true, force: true });
  });

  it('is built (npm run build), and VIGIL_NATIVE=0 turns it off', () => {
    assert.equal(typeof native, 'function');
    assert.equal(nativeListing({ VIGIL_NATIVE: '0' }), null);
  });

  it('walks like readdir: the same paths, order and types, odd names, FIFOs, sockets and symlink loops included', () => {
    const walk = (listDirectory: ListDirectory | null) => [...walkSorted(Buffer.from(base), { ...everything, listDirectory })].map((e) => `${e.type} ${e.path.toString('hex')}`);
    const fromNative = walk(native);
    assert.deepEqual(fromNative, walk(null));
    assert.equal(fromNative.length, 11); // the root, d and its nine entries
  });

  it('gives each entry its lstat fields, as lstat gives them', () => {
    const list = native!(Buffer.from(join(base, 'd')));
    assert.ok(typeof list !== 'number');
    assert.deepEqual(list.names, ['B-upper', 'fifo', 'file', 'loop-a', 'loop-b', 'odd\u00ff\n\u0080', 'sock', 'sub', 'to-sub']);
    list.names.forEach((name, i) => {
      const o = i * STAT_SLOTS;
      const st = lstatSync(Buffer.concat([Buffer.from(join(base, 'd') + '/'), Buffer.from(name, 'latin1')]), { bigint: true });
      const u64 = (at: number) => BigInt(list.stats[o + at]!) + (BigInt(list.stats[o + at + 1]!) << 32n);
      assert.equal(list.stats[o + SLOT_ERRNO], 0, name);
      assert.equal(BigInt(list.stats[o + SLOT_MODE]!), st.mode, name);
      assert.equal(BigInt(list.stats[o + SLOT_NLINK]!), st.nlink, name);
      assert.equal(u64(SLOT_DEV), st.dev, name);
      const state = readStatStateSync(Buffer.concat([Buffer.from(join(base, 'd') + '/'), Buffer.from(name, 'latin1')]))!;
      // The re-check's verdict from these fields is the verdict from an lstat of the path.
      assert.equal(recheckListed(list.stats, o, encodeState(state), ''), recheckOne(Buffer.concat([Buffer.from(join(base, 'd') + '/'), Buffer.from(name, 'latin1')]), encodeState(state), ''), name);
      assert.equal(recheckListed(list.stats, o, encodeState(state), ''), SAME, name);
      assert.equal(recheckListed(list.stats, o, encodeState({ ...state, mtimeNs: state.mtimeNs + 1n }), ''), DIFFERENT, name);
      assert.equal(recheckListed(list.stats, o, encodeState({ ...state, size: state.size + 2 ** 32 }), ''), DIFFERENT, name);
      assert.equal(recheckListed(list.stats, o, encodeState({ ...state, inode: state.inode + (1n << 32n) }), ''), DIFFERENT, name);
    });
  });

  it('reports an entry it could not stat by its errno: gone (ENOENT, ENOTDIR) or read again', () => {
    const stats = new Uint32Array(STAT_SLOTS);
    const known = encodeState(readStatStateSync(Buffer.from(join(base, 'd', 'file')))!);
    stats[SLOT_ERRNO] = constants.errno.ENOENT;
    assert.equal(recheckListed(stats, 0, known, ''), GONE);
    stats[SLOT_ERRNO] = constants.errno.ENOTDIR;
    assert.equal(recheckListed(stats, 0, known, ''), GONE);
    stats[SLOT_ERRNO] = constants.errno.EACCES;
    assert.equal(recheckListed(stats, 0, known, ''), DIFFERENT);
  });

  it('returns the errno for a directory it cannot list, and refuses what is not a path', () => {
    assert.equal(native!(Buffer.from(join(base, 'missing'))), constants.errno.ENOENT);
    assert.equal(native!(Buffer.from(join(base, 'd', 'file'))), constants.errno.ENOTDIR);
    assert.deepEqual((native!(Buffer.from(join(base, 'd', 'to-sub'))) as { names: string[] }).names, [], 'a symlinked directory is listed, like readdir');
    assert.throws(() => native!('/etc' as unknown as Buffer), TypeError);
    assert.throws(() => native!(Buffer.from('/etc\0x')), TypeError);
  });
});
