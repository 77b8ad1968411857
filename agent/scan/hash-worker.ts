/**
 * Hashing worker (run by piscina, one per core). Reads each regular file in 1 MiB chunks with one
 * reused buffer, so memory stays flat whatever the file size; fstat before and after: a file that
 * changed while it was read is read again (up to three times). Opened O_NOFOLLOW|O_NONBLOCK: a
 * path swapped for a symlink or FIFO since the walk can neither redirect nor block the read.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync, type BigIntStats } from 'node:fs';

export type HashAlgorithm = 'sha256' | 'sha512' | 'blake2b512';

export interface HashTask {
  /** Paths as latin1 strings (one char per byte): cheap to post, exact bytes restored here. */
  readonly paths: string[];
  readonly algorithm: HashAlgorithm;
  /** Files larger than this are not read (state without a digest); 0: no limit. */
  readonly maxBytes: number;
}

export interface HashedStat {
  readonly size: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
  readonly inode: bigint;
  readonly nlink: number;
}

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

function statOf(st: BigIntStats): HashedStat {
  return {
    size: Number(st.size),
    mode: Number(st.mode),
    uid: Number(st.uid),
    gid: Number(st.gid),
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    inode: st.ino,
    nlink: Number(st.nlink),
  };
}

export function hashOne(path: Buffer, algorithm: HashAlgorithm, maxBytes: number): HashResult {
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
      if (maxBytes > 0 && before.size > BigInt(maxBytes)) return { kind: 'hashed', stat: statOf(before), digest: null, bytes: 0 };
      const hash = createHash(algorithm);
      let bytes = 0;
      for (;;) {
        const n = readSync(fd, buffer, 0, CHUNK, null);
        if (n === 0) break;
        hash.update(buffer.subarray(0, n));
        bytes += n;
      }
      const after = fstatSync(fd, { bigint: true });
      const stable = after.size === before.size && after.mtimeNs === before.mtimeNs && after.ctimeNs === before.ctimeNs;
      if (stable || attempt >= 3) return { kind: 'hashed', stat: statOf(after), digest: hash.digest(), bytes };
    } catch (err) {
      return { kind: 'error', code: (err as NodeJS.ErrnoException).code ?? 'EIO' };
    } finally {
      closeSync(fd);
    }
  }
}

export default function hashBatch(task: HashTask): HashResult[] {
  return task.paths.map((p) => hashOne(Buffer.from(p, 'latin1'), task.algorithm, task.maxBytes));
}
