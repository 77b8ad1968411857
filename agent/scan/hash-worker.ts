/**
 * Hashing worker (run by piscina, one per core). Reads each regular file in 1 MiB chunks with one
 * reused buffer, so memory stays flat whatever the file size; fstat before and after: a file that
 * changed while it was read is read again (up to three times). Opened O_NOFOLLOW|O_NONBLOCK: a
 * path swapped for a symlink or FIFO since the walk can neither redirect nor block the read.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, type BigIntStats } from 'node:fs';

import type { HashAlgorithm } from '../../proto/model.js';
import { statFields, type StatFields } from '../stat-fields.js';

export type { HashAlgorithm };

export interface HashTask {
  /** Paths as latin1 strings (one char per byte): cheap to post, exact bytes restored here. */
  readonly paths: string[];
  /** Per path. */
  readonly algorithms: HashAlgorithm[];
  /** Per path: files larger than this are not read (state without a digest); 0: no limit. */
  readonly maxBytes: number[];
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
  | { readonly kind: 'hashed'; readonly stat: HashedStat; readonly digest: Uint8Array | null; readonly bytes: number }
  /** Gone (ENOENT/ENOTDIR): not an error. */
  | { readonly kind: 'vanished' }
  /** No longer a regular file, or a symlink now: the caller reads it again by type. */
  | { readonly kind: 'not_regular' }
  | { readonly kind: 'error'; readonly code: string };

const CHUNK = 1 << 20;
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
      if (code === 'ELOOP') return { kind: 'not_regular' };
      return { kind: 'error', code };
    }
    try {
      const before = fstatSync(fd, { bigint: true });
      if (!before.isFile()) return { kind: 'not_regular' };
      if (maxBytes > 0 && before.size > BigInt(maxBytes)) return { kind: 'hashed', stat: statFields(before), digest: null, bytes: 0 };
      const hash = createHash(algorithm);
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
      if (stable || attempt >= 3) return { kind: 'hashed', stat: statFields(after), digest: hash.digest(), bytes };
    } catch (err) {
      return { kind: 'error', code: (err as NodeJS.ErrnoException).code ?? 'EIO' };
    } finally {
      closeSync(fd);
    }
  }
}

/** Per path, 9 slots: present (1/0), type (0 regular, 1 other), size, mode, uid, gid, mtimeNs, ctimeNs, inode, nlink follow. */
export const STAT_SLOTS = 10;

/**
 * lstat of many paths, for the stat-only re-check: system calls spread over the worker threads,
 * results packed in one transferable array (no per-file objects crossing threads).
 */
export function statBatch(task: { paths: string[] }): BigInt64Array {
  const out = new BigInt64Array(task.paths.length * STAT_SLOTS);
  task.paths.forEach((p, i) => {
    const o = i * STAT_SLOTS;
    let st: BigIntStats | undefined;
    try {
      st = lstatSync(Buffer.from(p, 'latin1'), { bigint: true, throwIfNoEntry: false });
    } catch {
      st = undefined; // ENOTDIR and the like: gone as far as this path is concerned
    }
    if (!st) return;
    out[o] = 1n;
    out[o + 1] = st.isFile() ? 0n : 1n;
    out[o + 2] = st.size;
    out[o + 3] = st.mode;
    out[o + 4] = st.uid;
    out[o + 5] = st.gid;
    out[o + 6] = st.mtimeNs;
    out[o + 7] = st.ctimeNs;
    out[o + 8] = st.ino;
    out[o + 9] = st.nlink;
  });
  return out;
}

export default function hashBatch(task: HashTask): HashResult[] {
  return task.paths.map((p, i) => hashOne(Buffer.from(p, 'latin1'), task.algorithms[i] ?? 'sha256', task.maxBytes[i] ?? 0, task.bytesPerSecond));
}
