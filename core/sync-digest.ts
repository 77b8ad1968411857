/**
 * The numbers reconciliation compares (docs/delivery.md): where a path sits in position space, the
 * digest of a path with its whole state, and a range's digest (count and XOR of its entries').
 * Shared by the agent and the controller, so both compute the same numbers from the same state,
 * whichever way they hold it (LMDB encoding, Postgres row). All are signed 64-bit integers, so
 * Postgres stores them as bigint and aggregates them with bit_xor.
 */
import { createHash } from 'node:crypto';
import { FILE_TYPES, HASH_ALGORITHMS, type FileState } from './model.js';

const VERSION = 1;
const NONE32 = 0xffffffff;
const NONE16 = 0xffff;
const NONE8 = 0xff;

/** The first 8 bytes of a SHA-256 as a signed 64-bit integer. */
function leadingInt64(digest: Buffer): bigint {
  return digest.readBigInt64BE(0);
}

/** A path's position: the first 8 bytes of SHA-256(path bytes), signed. Spreads paths evenly. */
export function pathPosition(path: Buffer): bigint {
  return leadingInt64(createHash('sha256').update(path).digest());
}

/**
 * The digest of a path and its state: the first 8 bytes of SHA-256 over a fixed encoding of
 * both. Absent optional parts (null or undefined alike) encode as "none", so a state read back
 * from Postgres digests like the one the agent sent.
 */
export function entryDigest(path: Buffer, s: FileState): bigint {
  const content = s.sha256 ? { algorithm: 'sha256' as const, value: s.sha256 } : (s.digest ?? null);
  const error = s.error === null || s.error === undefined ? null : Buffer.from(s.error, 'utf8');
  const xattrs = s.xattrs ?? null;
  const target = s.symlinkTarget ?? null;
  const values = s.attrValues ?? null;
  const b = Buffer.alloc(
    1 + 4 + path.length + 1 + 8 + 4 * 4 + 8 * 3 + 2 + (content ? content.value.length : 0) + 4 + (target ? target.length : 0) + 2 + (error ? error.length : 0) + 1 + (xattrs ? xattrs.length : 0) + (values ? 4 + values.length : 0),
  );
  let o = b.writeUInt8(VERSION, 0);
  o = b.writeUInt32BE(path.length, o);
  o += path.copy(b, o);
  o = b.writeUInt8(FILE_TYPES.indexOf(s.type), o);
  o = b.writeBigUInt64BE(BigInt(s.size), o);
  o = b.writeUInt32BE(s.mode >>> 0, o);
  o = b.writeUInt32BE(s.uid >>> 0, o);
  o = b.writeUInt32BE(s.gid >>> 0, o);
  o = b.writeUInt32BE(s.nlink >>> 0, o);
  o = b.writeBigInt64BE(s.mtimeNs, o);
  o = b.writeBigInt64BE(s.ctimeNs, o);
  o = b.writeBigUInt64BE(BigInt.asUintN(64, s.inode), o);
  o = b.writeUInt8(content ? HASH_ALGORITHMS.indexOf(content.algorithm) : NONE8, o);
  o = b.writeUInt8(content ? content.value.length : 0, o);
  if (content) o += content.value.copy(b, o);
  o = b.writeUInt32BE(target ? target.length : NONE32, o);
  if (target) o += target.copy(b, o);
  o = b.writeUInt16BE(error ? error.length : NONE16, o);
  if (error) o += error.copy(b, o);
  o = b.writeUInt8(xattrs ? xattrs.length : 0, o);
  if (xattrs) o += xattrs.copy(b, o);
  // Appended only when present, so a state without named attribute values digests as before.
  if (values) {
    o = b.writeUInt32BE(values.length, o);
    o += values.copy(b, o);
  }
  return leadingInt64(createHash('sha256').update(b.subarray(0, o)).digest());
}

/** A range's digest: how many entries, and the XOR of their entry digests (order does not matter). */
export interface RangeDigest {
  count: number;
  xor: bigint;
}

export const emptyRange = (): RangeDigest => ({ count: 0, xor: 0n });

/** Adds one entry's digest to a range's (XOR is its own inverse: adding twice removes it). */
export function addEntry(r: RangeDigest, digest: bigint): void {
  r.count++;
  r.xor = BigInt.asIntN(64, r.xor ^ digest);
}

export const sameRange = (a: RangeDigest, b: RangeDigest): boolean => a.count === b.count && a.xor === b.xor;

/** A range of positions, both ends included. */
export type PositionRange = readonly [start: bigint, end: bigint];

/** Positions run from MIN_POSITION to MAX_POSITION, both included. */
export const MIN_POSITION = -(2n ** 63n);
export const MAX_POSITION = 2n ** 63n - 1n;

/**
 * Splits [start, end] (inclusive) into `parts` consecutive ranges of (nearly) equal width that
 * cover it exactly; fewer when the range is narrower than `parts`.
 */
export function splitRange(start: bigint, end: bigint, parts: number): [bigint, bigint][] {
  if (end < start) throw new RangeError(`empty range [${start}, ${end}]`);
  const width = end - start + 1n;
  const n = width < BigInt(parts) ? width : BigInt(parts);
  const out: [bigint, bigint][] = [];
  for (let i = 0n; i < n; i++) out.push([start + (width * i) / n, start + (width * (i + 1n)) / n - 1n]);
  return out;
}
