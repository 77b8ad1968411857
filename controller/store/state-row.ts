import type { Digest, FileState, FileType } from '../../core/model.js';
import { BinaryArray, type ElementType } from './binary-array.js';
import { buf, num } from './sql.js';

/** A file's state as the columns file_events and file_state share, written and read back. */
export const STATE_COLUMNS = 'file_type, size, mode, uid, gid, mtime_ns, ctime_ns, inode, nlink, sha256, symlink_target, error, digest_algorithm, digest, xattrs_sha256, attr_values';
/** The same columns for a select: the 64-bit ones as text, so no driver rounds them. */
export const SELECT_STATE_COLUMNS =
  'file_type, size, mode, uid, gid, mtime_ns::text as mtime_ns, ctime_ns::text as ctime_ns, inode::text as inode, nlink, sha256, symlink_target, error, digest_algorithm, digest, xattrs_sha256, attr_values';
export const STATE_PARAMS = 16;

/** The array parameter type of each state column, in STATE_COLUMNS order (for `unnest($n::t[])`). */
export const STATE_ARRAY_TYPES: readonly ElementType[] = ['text', 'int8', 'int4', 'int8', 'int8', 'int8', 'int8', 'int8', 'int4', 'bytea', 'bytea', 'text', 'text', 'bytea', 'bytea', 'bytea'];
if (STATE_ARRAY_TYPES.length !== STATE_PARAMS || STATE_COLUMNS.split(',').length !== STATE_PARAMS) throw new Error('STATE_ARRAY_TYPES and STATE_COLUMNS disagree');

const optionalBytes = (col: BinaryArray, b: Buffer | null | undefined) => (b ? col.bytea(b) : col.null());

/**
 * The state columns of many rows as binary array parameters (store/binary-array.ts), one row
 * appended at a time: what file_events and file_state share.
 */
export class StateColumns {
  private readonly cols: BinaryArray[];

  constructor(rowsHint: number) {
    this.cols = STATE_ARRAY_TYPES.map((t) => new BinaryArray(t, rowsHint * (t === 'bytea' ? 40 : 12)));
  }

  /** One row's state; null (a deletion's history row) leaves every column null. */
  add(s: FileState | null): void {
    const c = this.cols;
    if (!s) {
      for (const col of c) col.null();
      return;
    }
    c[0]!.text(s.type);
    c[1]!.int8(s.size);
    c[2]!.int4(s.mode);
    c[3]!.int8(s.uid);
    c[4]!.int8(s.gid);
    c[5]!.int8Big(s.mtimeNs);
    c[6]!.int8Big(s.ctimeNs);
    // st_ino is unsigned 64-bit; Postgres' bigint is signed: stored as the same 64 bits.
    c[7]!.int8Bits(s.inode);
    c[8]!.int4(s.nlink);
    optionalBytes(c[9]!, s.sha256);
    optionalBytes(c[10]!, s.symlinkTarget);
    if (s.error === null || s.error === undefined) c[11]!.null();
    else c[11]!.text(s.error);
    if (s.digest) {
      c[12]!.text(s.digest.algorithm);
      c[13]!.bytea(s.digest.value);
    } else {
      c[12]!.null();
      c[13]!.null();
    }
    optionalBytes(c[14]!, s.xattrs);
    optionalBytes(c[15]!, s.attrValues);
  }

  /** The sixteen parameters, in STATE_COLUMNS order. */
  finish(): Buffer[] {
    return this.cols.map((c) => c.finish());
  }
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
