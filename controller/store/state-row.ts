import type { Digest, FileState, FileType } from '../../core/model.js';
import { buf, num } from './sql.js';

/** A file's state as the columns file_events and file_state share, written and read back. */
export const STATE_COLUMNS = 'file_type, size, mode, uid, gid, mtime_ns, ctime_ns, inode, nlink, sha256, symlink_target, error, digest_algorithm, digest, xattrs_sha256, attr_values';
/** The same columns for a select: the 64-bit ones as text, so no driver rounds them. */
export const SELECT_STATE_COLUMNS =
  'file_type, size, mode, uid, gid, mtime_ns::text as mtime_ns, ctime_ns::text as ctime_ns, inode::text as inode, nlink, sha256, symlink_target, error, digest_algorithm, digest, xattrs_sha256, attr_values';
export const STATE_PARAMS = 16;

export function stateParams(s: FileState): unknown[] {
  return [
    s.type,
    s.size,
    s.mode,
    s.uid,
    s.gid,
    s.mtimeNs.toString(),
    s.ctimeNs.toString(),
    // st_ino is unsigned 64-bit; Postgres' bigint is signed: stored as the same 64 bits.
    BigInt.asIntN(64, s.inode).toString(),
    s.nlink,
    s.sha256,
    s.symlinkTarget,
    s.error,
    s.digest?.algorithm ?? null,
    s.digest?.value ?? null,
    s.xattrs ?? null,
    s.attrValues ?? null,
  ];
}

/** The state in a row selected with SELECT_STATE_COLUMNS; null when the row has none (a deletion). */
export function stateFromRow(r: Record<string, unknown>): FileState | null {
  if (r.file_type === null || r.file_type === undefined) return null;
  return {
    type: r.file_type as FileType,
    size: num(r.size),
    mode: num(r.mode),
    uid: num(r.uid),
    gid: num(r.gid),
    mtimeNs: BigInt(r.mtime_ns as string),
    ctimeNs: BigInt(r.ctime_ns as string),
    inode: BigInt.asUintN(64, BigInt(r.inode as string)),
    nlink: num(r.nlink),
    sha256: buf(r.sha256),
    symlinkTarget: buf(r.symlink_target),
    error: (r.error as string | null) ?? null,
    digest: r.digest_algorithm ? { algorithm: r.digest_algorithm as Digest['algorithm'], value: buf(r.digest)! } : null,
    xattrs: buf(r.xattrs_sha256),
    attrValues: buf(r.attr_values),
  };
}
