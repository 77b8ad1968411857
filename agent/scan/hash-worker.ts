/**
 * Hashing, run by piscina for ordered scans and called by the sharded scan's threads. Reads each
 * regular file in 256 KiB chunks with one reused buffer, so memory stays flat whatever the file
 * size; fstat before and after: a file that changed while it was read is read again (up to three
 * times). Opened O_NOFOLLOW|O_NONBLOCK: a path swapped for a symlink or FIFO since the walk can
 * neither redirect nor block the read. Paths the walk did not see as regular files are only
 * lstat'ed (FIFOs and devices are never opened), so every system call of a scan but the
 * directory listings runs here, off the main thread. Results are written straight into their
 * packed form (hash-results.ts): the fstat words land where the scanning thread reads them.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, lstatSync, openSync, readSync, type BigIntStats } from 'node:fs';
import { constants as osConstants } from 'node:os';

import type { FileState, FileType, HashAlgorithm } from '../../core/model.js';
import { fileType, fileTypeOfMode, readStatStateSync } from '../file-state.js';
import { encodedDigestAlgorithm, encodedHasError, encodedSameListedStat, encodedSameStat } from '../store/state-codec.js';
import { SLOT_CTIME, SLOT_ERRNO, SLOT_MODE, SLOT_MTIME, SLOT_SIZE, STAT_SLOTS } from '../native/stat-slots.js';
import { readXattrParts } from '../xattrs.js';
import { createResults, kindAt, putHashed, putState, putVanished, putXattrs, resultAt, unpackResults, VANISHED, type HashResult, type PackedResults } from './hash-results.js';
import { createStatFd } from './stat-fd.js';
import { pathAt, pathCount, type PathBatch } from './path-batch.js';

export type { HashAlgorithm };
export type { HashResult, HashedStat, PackedResults } from './hash-results.js';
export { unpackResults } from './hash-results.js';

export interface HashTask {
  /** The paths, packed (transferred, not copied). */
  readonly paths: PathBatch;
  /** Per path. */
  readonly algorithms: HashAlgorithm[];
  /** Per path: files larger than this are not read (state without a digest); 0: no limit. */
  readonly maxBytes: number[];
  /** Per path: 1 when the walk saw a regular file (opened and hashed), 0 otherwise (lstat only, never opened). */
  readonly regular: number[];
  /** Per path: what the rule asks of the extended attributes (agent/xattrs.ts xattrWants bits); 0: nothing. */
  readonly xattrs: number[];
  /** This thread's share of the read rate limit, bytes per second; 0: no limit. */
  readonly bytesPerSecond: number;
}

// Read-rate limiter of this thread: a window that restarts each second; a thread that read ahead
// of its allowance sleeps (it is a worker thread, so blocking is what we want).
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

/** The lstat state of a path that is not (or no longer) a regular file, or could not be read. */
function statOnly(out: PackedResults, i: number, path: Buffer, error?: string): void {
  let state: FileState | null;
  try {
    state = readStatStateSync(path);
  } catch (err) {
    return putState(out, i, unreadable((err as NodeJS.ErrnoException).code ?? 'EIO'));
  }
  if (!state) return putVanished(out, i);
  putState(out, i, error && state.type === 'regular' ? { ...state, sha256: null, error } : state);
}

/** A path whose lstat itself failed (EACCES on a parent, EIO): known only by its error. */
function unreadable(code: string): FileState {
  return { type: 'unknown', size: 0, mode: 0, uid: 0, gid: 0, mtimeNs: 0n, ctimeNs: 0n, inode: 0n, nlink: 0, sha256: null, symlinkTarget: null, error: code };
}

const CHUNK = 256 * 1024; // fits the L2 cache with the hash state: 1 MiB reads doubled the kernel copy time
const buffer = Buffer.allocUnsafe(CHUNK);
const FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
const statFd = createStatFd();
/** The stat words from before the read. */
const before = new Uint32Array(STAT_SLOTS);

const sizeAt = (w: Uint32Array, o: number) => w[o + SLOT_SIZE]! + w[o + SLOT_SIZE + 1]! * 2 ** 32;
/** Same size, mtime and ctime: the content did not change while it was read. */
const unchanged = (w: Uint32Array, o: number) =>
  w[o + SLOT_SIZE] === before[SLOT_SIZE] &&
  w[o + SLOT_SIZE + 1] === before[SLOT_SIZE + 1] &&
  w[o + SLOT_MTIME] === before[SLOT_MTIME] &&
  w[o + SLOT_MTIME + 1] === before[SLOT_MTIME + 1] &&
  w[o + SLOT_CTIME] === before[SLOT_CTIME] &&
  w[o + SLOT_CTIME + 1] === before[SLOT_CTIME + 1];

/** Reads one regular file and writes its result (hash-results.ts) at index i of out. */
function hashInto(out: PackedResults, i: number, path: Buffer, algorithm: HashAlgorithm, maxBytes: number, bytesPerSecond: number): void {
  const w = out.words;
  const o = resultAt(i);
  for (let attempt = 1; ; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, FLAGS);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
      if (code === 'ENOENT' || code === 'ENOTDIR') return putVanished(out, i);
      if (code === 'ELOOP') return statOnly(out, i, path); // a symlink now
      return statOnly(out, i, path, code);
    }
    let failed: string | null = null;
    try {
      statFd(fd, before, 0);
      if (fileTypeOfMode(before[SLOT_MODE]!) !== 'regular') failed = '';
      else if (maxBytes > 0 && sizeAt(before, 0) > maxBytes) {
        w.set(before, o);
        return putHashed(out, i, null, 0);
      } else {
        const hash = createHash(algorithm);
        // To the end, whatever fstat said: procfs files say 0, and some FUSE and network file
        // systems report a stale size.
        let bytes = 0;
        for (;;) {
          const n = readSync(fd, buffer, 0, CHUNK, null);
          if (n === 0) break;
          hash.update(buffer.subarray(0, n));
          bytes += n;
          throttle(n, bytesPerSecond);
        }
        statFd(fd, w, o); // after the read, where the result's stat goes
        if (unchanged(w, o)) return putHashed(out, i, hash.digest(), bytes);
        // Still changing on the last try: record the stat from before the read, which the file no
        // longer has, so the next stat-only re-check reads it again instead of trusting a digest
        // of content it never had.
        if (attempt >= 3) {
          w.set(before, o);
          return putHashed(out, i, hash.digest(), bytes);
        }
      }
    } catch (err) {
      failed = (err as NodeJS.ErrnoException).code ?? 'EIO';
    } finally {
      closeSync(fd);
    }
    // Not a regular file any more (''), or reading failed (EIO, EISDIR…): its lstat state.
    if (failed !== null) return statOnly(out, i, path, failed || undefined);
  }
}

/** One regular file's result (tests, and a look at one path). */
export function hashOne(path: Buffer, algorithm: HashAlgorithm, maxBytes: number, bytesPerSecond = 0): HashResult {
  const out = createResults(1, [algorithm]);
  hashInto(out, 0, path, algorithm, maxBytes, bytesPerSecond);
  return unpackResults(out)[0]!;
}

/** Verdicts of compareBatch, one byte per path. */
export const SAME = 0;
export const DIFFERENT = 1;
export const GONE = 2;

export interface CompareTask {
  readonly paths: PathBatch;
  /** Per path: its baseline state as the local store encodes it (state-codec.ts), decoded here, not on the scanning thread. */
  readonly known: PathBatch;
  /**
   * Per path: the algorithm the rule hashes with, when a known digest made with another one must
   * be redone; '' when the rule does not hash every file (max_hash_size) and any digest stands.
   */
  readonly algorithms: (HashAlgorithm | '')[];
}

/**
 * The stat-only re-check of a batch: lstat each path and compare what a re-check compares (type,
 * size, mode, owner, group, mtime, ctime, inode) with its baseline state. SAME: nothing to read or
 * report. DIFFERENT: the scanning thread reads its state again (and hashes it when it is a regular
 * file). GONE: it no longer exists. A known state with an error, or a digest made with another
 * algorithm than the rule's, is never SAME. Symlink targets and directory access need no check:
 * changing either changes the ctime.
 */
export function compareBatch(task: CompareTask): Uint8Array {
  const n = pathCount(task.paths);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = recheckOne(pathAt(task.paths, i), pathAt(task.known, i), task.algorithms[i] ?? '');
  return out;
}

/** compareBatch for one path, against its encoded state (read in place, never decoded). */
export function recheckOne(path: Buffer, known: Buffer, algorithm: HashAlgorithm | ''): number {
  let st: BigIntStats | undefined;
  try {
    st = lstatSync(path, { bigint: true, throwIfNoEntry: false });
  } catch (err) {
    // ENOTDIR: a parent became a file; anything else (EACCES…) is read again and recorded.
    return (err as NodeJS.ErrnoException).code === 'ENOTDIR' ? GONE : DIFFERENT;
  }
  if (!st) return GONE;
  const type = fileType(st);
  if (!encodedSameStat(known, type, st)) return DIFFERENT;
  return trusted(known, type, algorithm) ? SAME : DIFFERENT;
}

/** An unchanged stat is enough unless the known state has an error or a digest of another algorithm. */
function trusted(known: Buffer, type: FileType, algorithm: HashAlgorithm | ''): boolean {
  return !encodedHasError(known) && (type !== 'regular' || !algorithm || encodedDigestAlgorithm(known) === algorithm);
}

const { ENOENT, ENOTDIR } = osConstants.errno;

/**
 * recheckOne with the stat fields a native listing took (listing.ts; the entry's at o) instead
 * of an lstat of the path.
 */
export function recheckListed(stats: Uint32Array, o: number, known: Buffer, algorithm: HashAlgorithm | ''): number {
  const errno = stats[o + SLOT_ERRNO]!;
  if (errno !== 0) return errno === ENOENT || errno === ENOTDIR ? GONE : DIFFERENT;
  const type = fileTypeOfMode(stats[o + SLOT_MODE]!);
  if (!encodedSameListedStat(known, type, stats, o)) return DIFFERENT;
  return trusted(known, type, algorithm) ? SAME : DIFFERENT;
}

export default function hashBatch(task: HashTask): PackedResults {
  const n = pathCount(task.paths);
  const out = createResults(n, task.algorithms);
  for (let i = 0; i < n; i++) {
    const path = pathAt(task.paths, i);
    if (task.regular[i] === 0) statOnly(out, i, path);
    else hashInto(out, i, path, task.algorithms[i] ?? 'sha256', task.maxBytes[i] ?? 0, task.bytesPerSecond);
  }
  // Extended attributes after the content, for the paths whose rule checks them (agent/xattrs.ts).
  const wanted: number[] = [];
  for (let i = 0; i < n; i++) if (task.xattrs[i] && kindAt(out, i) !== VANISHED) wanted.push(i);
  for (const i of wanted) {
    const parts = readXattrParts(pathAt(task.paths, i), task.xattrs[i]!);
    putXattrs(out, i, parts.xattrs, parts.attrValues);
  }
  return out;
}
