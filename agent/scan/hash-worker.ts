/**
 * Hashing, run by piscina for ordered scans and called by the sharded scan's threads. Reads each
 * regular file in 256 KiB chunks with one reused buffer, so memory stays flat whatever the file
 * size; fstat before and after: a file that changed while it was read is read again (up to three
 * times). Opened O_NOFOLLOW|O_NONBLOCK: a path swapped for a symlink or FIFO since the walk can
 * neither redirect nor block the read. Paths the walk did not see as regular files are only
 * lstat'ed (FIFOs and devices are never opened), so every system call of a scan but the
 * directory listings runs here, off the main thread.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, type BigIntStats } from 'node:fs';
import { constants as osConstants } from 'node:os';

import { FILE_TYPES, type FileState, type FileType, type HashAlgorithm } from '../../proto/model.js';
import { fileType, fileTypeOfMode, readStatStateSync } from '../file-state.js';
import { encodedDigestAlgorithm, encodedHasError, encodedSameListedStat, encodedSameStat } from '../state-codec.js';
import { SLOT_ERRNO, SLOT_MODE } from './listing.js';
import { readXattrsSync } from '../xattrs.js';
import { statFields, type StatFields } from '../stat-fields.js';
import { pathAt, pathCount, type PathBatch } from './path-batch.js';

export type { HashAlgorithm };

export interface HashTask {
  /** The paths, packed (transferred, not copied). */
  readonly paths: PathBatch;
  /** Per path. */
  readonly algorithms: HashAlgorithm[];
  /** Per path: files larger than this are not read (state without a digest); 0: no limit. */
  readonly maxBytes: number[];
  /** Per path: 1 when the walk saw a regular file (opened and hashed), 0 otherwise (lstat only, never opened). */
  readonly regular: number[];
  /** Per path: 1 when the rule checks extended attributes (read with one getfattr per batch). */
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

export type HashedStat = StatFields;

export type HashResult =
  | { readonly kind: 'hashed'; readonly stat: HashedStat; readonly digest: Uint8Array | null; readonly bytes: number; readonly xattrs?: Buffer | null }
  /** Gone (ENOENT/ENOTDIR): not an error. */
  | { readonly kind: 'vanished' }
  /** Not hashed: not a regular file (any more), or unreadable (the state carries the error code). */
  | { readonly kind: 'state'; readonly state: FileState };

/** The lstat state of a path that is not (or no longer) a regular file, or could not be read. */
function statOnly(path: Buffer, error?: string): HashResult {
  let state: FileState | null;
  try {
    state = readStatStateSync(path);
  } catch (err) {
    return { kind: 'state', state: unreadable((err as NodeJS.ErrnoException).code ?? 'EIO') };
  }
  if (!state) return { kind: 'vanished' };
  return { kind: 'state', state: error && state.type === 'regular' ? { ...state, sha256: null, error } : state };
}

/** A path whose lstat itself failed (EACCES on a parent, EIO): known only by its error. */
function unreadable(code: string): FileState {
  return { type: 'unknown', size: 0, mode: 0, uid: 0, gid: 0, mtimeNs: 0n, ctimeNs: 0n, inode: 0n, nlink: 0, sha256: null, symlinkTarget: null, error: code };
}

const CHUNK = 256 * 1024; // fits the L2 cache with the hash state: 1 MiB reads doubled the kernel copy time
const buffer = Buffer.allocUnsafe(CHUNK);
const FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

export function hashOne(path: Buffer, algorithm: HashAlgorithm, maxBytes: number, bytesPerSecond = 0): HashResult {
  for (let attempt = 1; ; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, FLAGS);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
      if (code === 'ENOENT' || code === 'ENOTDIR') return { kind: 'vanished' };
      if (code === 'ELOOP') return statOnly(path); // a symlink now
      return statOnly(path, code);
    }
    let failed: string | null = null;
    try {
      const before = fstatSync(fd, { bigint: true });
      if (!before.isFile()) failed = '';
      else if (maxBytes > 0 && before.size > BigInt(maxBytes)) return { kind: 'hashed', stat: statFields(before), digest: null, bytes: 0 };
      else {
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
        const after = fstatSync(fd, { bigint: true });
        const stable = after.size === before.size && after.mtimeNs === before.mtimeNs && after.ctimeNs === before.ctimeNs;
        if (stable) return { kind: 'hashed', stat: statFields(after), digest: hash.digest(), bytes };
        // Still changing on the last try: record the stat from before the read, which the file no
        // longer has, so the next stat-only re-check reads it again instead of trusting a digest
        // of content it never had.
        if (attempt >= 3) return { kind: 'hashed', stat: statFields(before), digest: hash.digest(), bytes };
      }
    } catch (err) {
      failed = (err as NodeJS.ErrnoException).code ?? 'EIO';
    } finally {
      closeSync(fd);
    }
    // Not a regular file any more (''), or reading failed (EIO, EISDIR…): its lstat state.
    if (failed !== null) return statOnly(path, failed || undefined);
  }
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

/**
 * A batch's results packed for the trip back to the main thread: per path, HASH_SLOTS values
 * (kind, size, mode, uid, gid, mtimeNs, ctimeNs, inode, nlink, bytes read, digest length), the digests side by
 * side in one byte array, and error codes by index. One structured clone of three arrays instead
 * of an object and a buffer per file.
 */
export interface PackedResults {
  readonly slots: BigInt64Array;
  readonly digests: Uint8Array;
  readonly digestLength: number;
  /** By index, for 'state' results: the error code, the symlink target. */
  readonly errors: Record<number, string>;
  readonly targets: Record<number, Uint8Array>;
  /** By index: the extended attributes' digest, where they were read. */
  readonly xattrs: Record<number, Uint8Array>;
}

export const HASH_SLOTS = 11;
const KIND_CODE = { hashed: 0n, vanished: 1n, state: 2n } as const;
const DIGEST_LENGTH: Record<HashAlgorithm, number> = { sha256: 32, sha512: 64, blake2b512: 64 };

/** Slots o+1 … o+8 of a result: the stat fields. */
function putStat(slots: BigInt64Array, o: number, st: StatFields): void {
  slots[o + 1] = BigInt(st.size);
  slots[o + 2] = BigInt(st.mode);
  slots[o + 3] = BigInt(st.uid);
  slots[o + 4] = BigInt(st.gid);
  slots[o + 5] = st.mtimeNs;
  slots[o + 6] = st.ctimeNs;
  slots[o + 7] = st.inode;
  slots[o + 8] = BigInt(st.nlink);
}

function statAt(slots: BigInt64Array, o: number): StatFields {
  return {
    size: Number(slots[o + 1]),
    mode: Number(slots[o + 2]),
    uid: Number(slots[o + 3]),
    gid: Number(slots[o + 4]),
    mtimeNs: slots[o + 5]!,
    ctimeNs: slots[o + 6]!,
    inode: slots[o + 7]!,
    nlink: Number(slots[o + 8]),
  };
}

export function packResults(results: readonly HashResult[], digestLength: number): PackedResults {
  const slots = new BigInt64Array(results.length * HASH_SLOTS);
  const digests = new Uint8Array(results.length * digestLength);
  const errors: Record<number, string> = {};
  const targets: Record<number, Uint8Array> = {};
  const xattrs: Record<number, Uint8Array> = {};
  results.forEach((r, i) => {
    const o = i * HASH_SLOTS;
    slots[o] = KIND_CODE[r.kind];
    if (r.kind === 'vanished') return;
    const st = r.kind === 'hashed' ? r.stat : r.state;
    putStat(slots, o, st);
    const x = r.kind === 'hashed' ? r.xattrs : r.state.xattrs;
    if (x) xattrs[i] = new Uint8Array(x);
    if (r.kind === 'state') {
      slots[o + 9] = BigInt(FILE_TYPES.indexOf(r.state.type));
      if (r.state.error) errors[i] = r.state.error;
      if (r.state.symlinkTarget) targets[i] = new Uint8Array(r.state.symlinkTarget); // a copy: a view would post its whole pool slab
      return;
    }
    slots[o + 9] = r.digest ? BigInt(r.bytes) : -1n; // -1: not hashed (over max_hash_size)
    slots[o + 10] = BigInt(r.digest?.length ?? 0);
    if (r.digest) digests.set(r.digest, i * digestLength);
  });
  return { slots, digests, digestLength, errors, targets, xattrs };
}

export function unpackResults(p: PackedResults): HashResult[] {
  const n = p.slots.length / HASH_SLOTS;
  const out: HashResult[] = new Array(n);
  const digests = Buffer.from(p.digests.buffer, p.digests.byteOffset, p.digests.byteLength);
  for (let i = 0; i < n; i++) {
    const o = i * HASH_SLOTS;
    const kind = p.slots[o];
    if (kind === KIND_CODE.vanished) out[i] = { kind: 'vanished' };
    else if (kind === KIND_CODE.state) {
      const target = p.targets[i];
      out[i] = {
        kind: 'state',
        state: {
          type: FILE_TYPES[Number(p.slots[o + 9])] ?? 'unknown',
          ...statAt(p.slots, o),
          sha256: null,
          symlinkTarget: target ? Buffer.from(target.buffer, target.byteOffset, target.byteLength) : null,
          error: p.errors[i] ?? null,
          xattrs: xattrsAt(p, i),
        },
      };
    } else {
      const read = p.slots[o + 9]!;
      out[i] = {
        kind: 'hashed',
        stat: statAt(p.slots, o),
        digest: read >= 0n ? digests.subarray(i * p.digestLength, i * p.digestLength + Number(p.slots[o + 10])) : null,
        bytes: read >= 0n ? Number(read) : 0,
        xattrs: xattrsAt(p, i),
      };
    }
  }
  return out;
}

function xattrsAt(p: PackedResults, i: number): Buffer | null {
  const x = p.xattrs[i];
  return x ? Buffer.from(x.buffer, x.byteOffset, x.byteLength) : null;
}

export default function hashBatch(task: HashTask): PackedResults {
  const results: HashResult[] = Array.from({ length: pathCount(task.paths) }, (_, i) => {
    const path = pathAt(task.paths, i);
    return task.regular[i] === 0 ? statOnly(path) : hashOne(path, task.algorithms[i] ?? 'sha256', task.maxBytes[i] ?? 0, task.bytesPerSecond);
  });
  // Extended attributes after the content, for the paths whose rule checks them: one getfattr for the batch.
  const wanted = results.flatMap((r, i) => (task.xattrs[i] && r.kind !== 'vanished' ? [i] : []));
  const read = readXattrsSync(wanted.map((i) => pathAt(task.paths, i)));
  wanted.forEach((i, k) => {
    const r = results[i]!;
    if (r.kind === 'hashed') results[i] = { ...r, xattrs: read[k] ?? null };
    else if (r.kind === 'state') results[i] = { kind: 'state', state: { ...r.state, xattrs: read[k] ?? null } };
  });
  return packResults(results, Math.max(32, ...task.algorithms.map((a) => DIGEST_LENGTH[a])));
}
