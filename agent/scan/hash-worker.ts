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
  readonly errors: Record<number, string>;
}

export const HASH_SLOTS = 11;
const KIND_CODE = { hashed: 0n, vanished: 1n, not_regular: 2n, error: 3n } as const;
const DIGEST_LENGTH: Record<HashAlgorithm, number> = { sha256: 32, sha512: 64, blake2b512: 64 };

export function packResults(results: readonly HashResult[], digestLength: number): PackedResults {
  const slots = new BigInt64Array(results.length * HASH_SLOTS);
  const digests = new Uint8Array(results.length * digestLength);
  const errors: Record<number, string> = {};
  results.forEach((r, i) => {
    const o = i * HASH_SLOTS;
    slots[o] = KIND_CODE[r.kind];
    if (r.kind === 'error') errors[i] = r.code;
    if (r.kind !== 'hashed') return;
    const st = r.stat;
    slots[o + 1] = BigInt(st.size);
    slots[o + 2] = BigInt(st.mode);
    slots[o + 3] = BigInt(st.uid);
    slots[o + 4] = BigInt(st.gid);
    slots[o + 5] = st.mtimeNs;
    slots[o + 6] = st.ctimeNs;
    slots[o + 7] = st.inode;
    slots[o + 8] = BigInt(st.nlink);
    slots[o + 9] = r.digest ? BigInt(r.bytes) : -1n; // -1: not hashed (over max_hash_size)
    slots[o + 10] = BigInt(r.digest?.length ?? 0);
    if (r.digest) digests.set(r.digest, i * digestLength);
  });
  return { slots, digests, digestLength, errors };
}

export function unpackResults(p: PackedResults): HashResult[] {
  const n = p.slots.length / HASH_SLOTS;
  const out: HashResult[] = new Array(n);
  const digests = Buffer.from(p.digests.buffer, p.digests.byteOffset, p.digests.byteLength);
  for (let i = 0; i < n; i++) {
    const o = i * HASH_SLOTS;
    const kind = p.slots[o];
    if (kind === KIND_CODE.vanished) out[i] = { kind: 'vanished' };
    else if (kind === KIND_CODE.not_regular) out[i] = { kind: 'not_regular' };
    else if (kind === KIND_CODE.error) out[i] = { kind: 'error', code: p.errors[i] ?? 'EIO' };
    else {
      const read = p.slots[o + 9]!;
      out[i] = {
        kind: 'hashed',
        stat: {
          size: Number(p.slots[o + 1]),
          mode: Number(p.slots[o + 2]),
          uid: Number(p.slots[o + 3]),
          gid: Number(p.slots[o + 4]),
          mtimeNs: p.slots[o + 5]!,
          ctimeNs: p.slots[o + 6]!,
          inode: p.slots[o + 7]!,
          nlink: Number(p.slots[o + 8]),
        },
        digest: read >= 0n ? digests.subarray(i * p.digestLength, i * p.digestLength + Number(p.slots[o + 10])) : null,
        bytes: read >= 0n ? Number(read) : 0,
      };
    }
  }
  return out;
}

export default function hashBatch(task: HashTask): PackedResults {
  const results = task.paths.map((p, i) => hashOne(Buffer.from(p, 'latin1'), task.algorithms[i] ?? 'sha256', task.maxBytes[i] ?? 0, task.bytesPerSecond));
  return packResults(results, Math.max(32, ...task.algorithms.map((a) => DIGEST_LENGTH[a])));
}
