/**
 * The hash pool's tasks (hash-pool.ts; piscina loads them through hash-worker-entry.cts), also
 * called by the sharded scan's threads: batches of paths read as agent/hashing/hash-file.ts says
 * (for scans, and for real-time checks with an lstat first), a held descriptor's file, and the
 * stat-only re-check. Every system call of a scan but the directory listings runs in these
 * threads, off the main thread.
 */
import { lstatSync, type BigIntStats } from 'node:fs';
import { constants as osConstants } from 'node:os';

import type { FileType, HashAlgorithm } from '../../core/model.js';
import { fileType, fileTypeOfMode } from '../file-state.js';
import { hashInto, readInto, statOnly } from '../hashing/hash-file.js';
import { createResults, kindAt, putXattrs, VANISHED, type PackedResults } from '../hashing/hash-results.js';
import { encodedDigestAlgorithm, encodedHasError, encodedSameListedStat, encodedSameStat } from '../store/state-codec.js';
import { SLOT_ERRNO, SLOT_MODE } from '../native/stat-slots.js';
import { readXattrParts } from '../xattrs.js';
import { pathAt, pathCount, type PathBatch } from './path-batch.js';

export type { HashAlgorithm };
export type { HashResult, HashedStat, PackedResults } from '../hashing/hash-results.js';
export { unpackResults } from '../hashing/hash-results.js';

/** HashTask.regular: how a path is read, from what is known of its type. */
export const LSTAT_ONLY = 0;
export const OPEN = 1;
export const LSTAT_FIRST = 2;

export interface HashTask {
  /** The paths, packed (transferred, not copied). */
  readonly paths: PathBatch;
  /** Per path. */
  readonly algorithms: HashAlgorithm[];
  /** Per path: files larger than this are not read (state without a digest); 0: no limit. */
  readonly maxBytes: number[];
  /**
   * Per path: OPEN when the walk saw a regular file (opened and hashed), LSTAT_ONLY when it saw
   * anything else (never opened), LSTAT_FIRST for a real-time check (lstat, then opened if regular).
   */
  readonly regular: number[];
  /** Per path: what the rule asks of the extended attributes (agent/xattrs.ts xattrWants bits); 0: nothing. */
  readonly xattrs: number[];
  /** This thread's share of the read rate limit, bytes per second; 0: no limit. */
  readonly bytesPerSecond: number;
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
    const regular = task.regular[i];
    if (regular === LSTAT_ONLY) statOnly(out, i, path);
    else if (regular === LSTAT_FIRST) readInto(out, i, path, task.algorithms[i] ?? 'sha256', task.maxBytes[i] ?? 0, task.bytesPerSecond);
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

export interface DescriptorTask {
  /** A descriptor of this process (threads share them); the caller closes it once the task is done. */
  readonly fd: number;
  readonly algorithm: HashAlgorithm;
  /** Larger files are not read (stat without a digest); 0: no limit. */
  readonly maxBytes: number;
  readonly bytesPerSecond: number;
}

/** The file behind a held descriptor (a fanotify close-write), readable even when its path is gone. */
export function hashDescriptor(task: DescriptorTask): PackedResults {
  const out = createResults(1, [task.algorithm]);
  hashInto(out, 0, task.fd, task.algorithm, task.maxBytes, task.bytesPerSecond);
  return out;
}
