/**
 * Reading a file's content: the agent's one implementation, for every read it makes. The sharded
 * scan's threads call it (scan/shard-worker.ts); the hash pool's threads (scan/hash-worker.ts) run
 * it for ordered scans and for real-time checks, by path and through the descriptor fanotify held
 * for a file deleted before its check (docs/delivery.md, "Short-lived files"). It is synchronous
 * and runs in those threads (tests call it on their own), niced as the policy's limits.nice says.
 *
 * The rules:
 * - **Open.** By path with O_RDONLY|O_NOFOLLOW|O_NONBLOCK, and only a path seen as a regular file
 *   (by the walk, or by an lstat just before: FIFOs and devices are never opened), so a path
 *   swapped since for a symlink (ELOOP: its lstat state) or a FIFO can neither redirect nor block
 *   the read. Gone (ENOENT, ENOTDIR): vanished. A held descriptor is read as it is.
 * - **fstat before the read.** Not a regular file (any more): its lstat state (a descriptor's
 *   fstat), never read. Larger than the rule's max_hash_size: its stat, no digest.
 * - **Read** from the start to the end of the file (a read that returns 0), whatever size fstat
 *   gave: procfs says 0, some FUSE and network file systems report stale sizes. READ_BYTES
 *   (256 KiB) at a time into one buffer per thread, so a huge or sparse file never sits in memory
 *   (1 MiB reads did not fit the 512 KiB L2 cache beside the hash state: docs/benchmarks.md),
 *   each read fed to the rule's algorithm (sha256, sha512 or blake2b512).
 * - **Throttle.** After each read, a thread ahead of its share of limits.io_mb_per_s sleeps.
 * - **fstat after the read.** Size, mtime and ctime as before: the digest, with the stat from
 *   after. Otherwise the file changed while it was read, and it is read again (by path: opened
 *   again, it may be another file now; a descriptor: from offset 0), READS reads in all. Still
 *   changing on the last: its digest with the stat from *before* that read, which the file no
 *   longer has, so the next stat-only re-check reads it again instead of trusting a digest of
 *   content it never had.
 * - **A read that fails** (EIO, EISDIR…): the lstat state (a descriptor's fstat) with the error
 *   code, no digest.
 *
 * Results are written straight into their packed form (hash-results.ts): the fstat words land
 * where the main thread reads them, no Stats object and no BigInt on the hashing side.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import type { FileState, HashAlgorithm } from '../../core/model.js';
import { fileTypeOfMode, readStatStateSync, stateFromStats } from '../file-state.js';
import { SLOT_CTIME, SLOT_MODE, SLOT_MTIME, SLOT_SIZE, STAT_SLOTS } from '../native/stat-slots.js';
import { createResults, putHashed, putState, putVanished, resultAt, resultState, unpackResults, type HashResult, type PackedResults } from './hash-results.js';
import { createStatFd } from './stat-fd.js';

/** Bytes per read. */
export const READ_BYTES = 256 * 1024;
/** Reads of a file that keeps changing, at most. */
export const READS = 3;
const FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

const buffer = Buffer.allocUnsafe(READ_BYTES);
const statFd = createStatFd();
/** The stat words from before the read. */
const before = new Uint32Array(STAT_SLOTS);

// This thread's read rate: a window that restarts each second; a thread that read ahead of its
// allowance sleeps (a worker thread, so blocking is what we want).
const sleeper = new Int32Array(new SharedArrayBuffer(4));
let windowStart = performance.now();
let windowBytes = 0;
function throttle(bytes: number, rate: number): void {
  if (rate <= 0) return;
  const now = performance.now();
  if (now - windowStart > 1000) {
    windowStart = now;
    windowBytes = 0;
  }
  windowBytes += bytes;
  const due = windowStart + (windowBytes / rate) * 1000;
  if (due > now) Atomics.wait(sleeper, 0, 0, due - now);
}

const sizeAt = (w: Uint32Array, o: number) => w[o + SLOT_SIZE]! + w[o + SLOT_SIZE + 1]! * 2 ** 32;
/** Same size, mtime and ctime: the content did not change while it was read. */
const unchanged = (w: Uint32Array, o: number) =>
  w[o + SLOT_SIZE] === before[SLOT_SIZE] &&
  w[o + SLOT_SIZE + 1] === before[SLOT_SIZE + 1] &&
  w[o + SLOT_MTIME] === before[SLOT_MTIME] &&
  w[o + SLOT_MTIME + 1] === before[SLOT_MTIME + 1] &&
  w[o + SLOT_CTIME] === before[SLOT_CTIME] &&
  w[o + SLOT_CTIME + 1] === before[SLOT_CTIME + 1];

const DONE = 0;
const AGAIN = 1;
const NOT_REGULAR = 2;

/**
 * One read of an open file, from its start (a held descriptor by position: it is read again from
 * offset 0; a path's fresh descriptor in sequence), into result i of out unless it must be read
 * again. Throws what fstat and read throw.
 */
function readOnce(fd: number, held: boolean, out: PackedResults, i: number, algorithm: HashAlgorithm, maxBytes: number, bytesPerSecond: number, last: boolean): number {
  const w = out.words;
  const o = resultAt(i);
  statFd(fd, before, 0);
  if (fileTypeOfMode(before[SLOT_MODE]!) !== 'regular') return NOT_REGULAR;
  if (maxBytes > 0 && sizeAt(before, 0) > maxBytes) {
    w.set(before, o);
    putHashed(out, i, null, 0);
    return DONE;
  }
  const hash = createHash(algorithm);
  let bytes = 0;
  for (;;) {
    const n = readSync(fd, buffer, 0, READ_BYTES, held ? bytes : null);
    if (n === 0) break;
    hash.update(buffer.subarray(0, n));
    bytes += n;
    throttle(n, bytesPerSecond);
  }
  statFd(fd, w, o); // after the read, where the result's stat goes
  if (!unchanged(w, o)) {
    if (!last) return AGAIN;
    w.set(before, o);
  }
  putHashed(out, i, hash.digest(), bytes);
  return DONE;
}

/**
 * Reads one regular file, by path or through a descriptor this process holds (the caller closes
 * it), and writes its result at index i of out; maxBytes 0: no limit; bytesPerSecond 0: no limit.
 */
export function hashInto(out: PackedResults, i: number, source: Buffer | number, algorithm: HashAlgorithm, maxBytes: number, bytesPerSecond: number): void {
  const held = typeof source === 'number';
  for (let attempt = 1; ; attempt++) {
    let fd: number;
    if (held) fd = source;
    else {
      try {
        fd = openSync(source, FLAGS);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
        if (code === 'ENOENT' || code === 'ENOTDIR') return putVanished(out, i);
        return statOnly(out, i, source, code === 'ELOOP' ? undefined : code); // ELOOP: a symlink now
      }
    }
    let outcome = NOT_REGULAR;
    let failed: string | undefined;
    try {
      outcome = readOnce(fd, held, out, i, algorithm, maxBytes, bytesPerSecond, attempt >= READS);
    } catch (err) {
      failed = (err as NodeJS.ErrnoException).code ?? 'EIO';
    } finally {
      if (!held) closeSync(fd);
    }
    if (outcome === DONE) return;
    // Not a regular file any more, or the read failed: what a stat says, with the error.
    if (failed !== undefined || outcome === NOT_REGULAR) return held ? descriptorOnly(out, i, source, failed) : statOnly(out, i, source, failed);
  }
}

/**
 * A path whose type is not known yet (a real-time check): its lstat state, and a regular file
 * read as hashInto reads it.
 */
export function readInto(out: PackedResults, i: number, path: Buffer, algorithm: HashAlgorithm, maxBytes: number, bytesPerSecond: number): void {
  const state = lstatOrPut(out, i, path);
  if (!state) return;
  if (state.type !== 'regular') return putState(out, i, state);
  hashInto(out, i, path, algorithm, maxBytes, bytesPerSecond);
}

/** The lstat state of a path that is not (or no longer) a regular file, or could not be read. */
export function statOnly(out: PackedResults, i: number, path: Buffer, error?: string): void {
  const state = lstatOrPut(out, i, path);
  if (state) putState(out, i, error && state.type === 'regular' ? { ...state, sha256: null, error } : state);
}

/** The path's lstat state; or, when it is gone or cannot be stat'ed, that result put in slot i and null. */
function lstatOrPut(out: PackedResults, i: number, path: Buffer): FileState | null {
  let state: FileState | null;
  try {
    state = readStatStateSync(path);
  } catch (err) {
    putState(out, i, unreadable((err as NodeJS.ErrnoException).code ?? 'EIO'));
    return null;
  }
  if (!state) putVanished(out, i);
  return state;
}

/** The fstat state of a held descriptor that is not a regular file, or could not be read. */
function descriptorOnly(out: PackedResults, i: number, fd: number, error?: string): void {
  const st = fstatSync(fd, { bigint: true });
  putState(out, i, stateFromStats(st, error ? { error } : {}));
}

/** A path whose lstat itself failed (EACCES on a parent, EIO): known only by its error. */
function unreadable(code: string): FileState {
  return { type: 'unknown', size: 0, mode: 0, uid: 0, gid: 0, mtimeNs: 0n, ctimeNs: 0n, inode: 0n, nlink: 0, sha256: null, symlinkTarget: null, error: code };
}

/** One regular file's result, read on this thread (tests, and a look at one path). */
export function hashOne(path: Buffer, algorithm: HashAlgorithm, maxBytes: number, bytesPerSecond = 0): HashResult {
  const out = createResults(1, [algorithm]);
  hashInto(out, 0, path, algorithm, maxBytes, bytesPerSecond);
  return unpackResults(out)[0]!;
}

/** One path's state now, read on this thread as a real-time check reads it (null: it does not exist). */
export function readPathState(path: Buffer, opts: { algorithm?: HashAlgorithm; maxBytes?: number } = {}): FileState | null {
  const algorithm = opts.algorithm ?? 'sha256';
  const out = createResults(1, [algorithm]);
  readInto(out, 0, path, algorithm, opts.maxBytes ?? 0, 0);
  return resultState(unpackResults(out)[0]!, algorithm);
}
