/**
 * The numbers reconciliation compares (docs/delivery.md): where a path sits in position space, the
 * digest of a path with its whole state, and a range's digest (count and XOR of its entries').
 * Shared by the agent and the controller, so both compute the same numbers from the same state,
 * whichever way they hold it (LMDB encoding, Postgres row). All are signed 64-bit integers, so
 * Postgres stores them as bigint and aggregates them with bit_xor.
 */
import * as crypto from 'node:crypto';
import { FILE_TYPES, HASH_ALGORITHMS, type FileState } from './model.js';

const VERSION = 1;
const NONE32 = 0xffffffff;
const NONE16 = 0xffff;
const NONE8 = 0xff;
const TWO_32 = 4294967296;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * SHA-256 of some bytes, as a Buffer or as a 32-character latin1 string (one character a byte):
 * node:crypto's one-shot hash() where Node has it (20.12 on), a Hash object otherwise. The string
 * form makes no ArrayBuffer: the controller takes two digests per stored delta, and a Buffer each
 * cost it twice the time and much of its garbage.
 */
const sha256: (data: Uint8Array) => Buffer =
  typeof crypto.hash === 'function' ? (data) => crypto.hash('sha256', data, 'buffer') : (data) => crypto.createHash('sha256').update(data).digest();
// 'binary' is Node's other name for latin1.
const sha256Latin1: (data: Uint8Array) => string =
  typeof crypto.hash === 'function' ? (data) => crypto.hash('sha256', data, 'binary') : (data) => crypto.createHash('sha256').update(data).digest('binary');

/** The first 8 bytes of a SHA-256 as a signed 64-bit integer. */
function leadingInt64(digest: Buffer): bigint {
  return digest.readBigInt64BE(0);
}

/** A path's position: the first 8 bytes of SHA-256(path bytes), signed. Spreads paths evenly. */
export function pathPosition(path: Buffer): bigint {
  return leadingInt64(sha256(path));
}

/**
 * SHA-256(path bytes) as a latin1 string: its first 8 characters are the path's position
 * (pathPosition), big-endian; the whole is file_state's key in Postgres (path_sha256).
 */
export function pathDigestLatin1(path: Uint8Array): string {
  return sha256Latin1(path);
}

/** Where encodeEntry writes path and state before hashing; grown for a larger entry. */
let scratch = Buffer.allocUnsafe(16 * 1024);
let scratchView = new DataView(scratch.buffer, scratch.byteOffset, scratch.length);

/**
 * The bytes entryDigest hashes (a view of a buffer reused by the next call). This encoding is the
 * contract between agents and controllers of every version: change it only with VERSION.
 */
function encodeEntry(path: Uint8Array, s: FileState): Buffer {
  const content = s.sha256 ? { algorithm: 'sha256' as const, value: s.sha256 } : (s.digest ?? null);
  const error = s.error === null || s.error === undefined ? null : Buffer.from(s.error, 'utf8');
  const xattrs = s.xattrs ?? null;
  const target = s.symlinkTarget ?? null;
  const values = s.attrValues ?? null;
  const size = 1 + 4 + path.length + 1 + 8 + 4 * 4 + 8 * 3 + 2 + (content ? content.value.length : 0) + 4 + (target ? target.length : 0) + 2 + (error ? error.length : 0) + 1 + (xattrs ? xattrs.length : 0) + (values ? 4 + values.length : 0);
  if (scratch.length < size) {
    scratch = Buffer.allocUnsafe(Math.max(size, scratch.length * 2));
    scratchView = new DataView(scratch.buffer, scratch.byteOffset, scratch.length);
  }
  const b = scratch;
  const v = scratchView;
  b[0] = VERSION;
  v.setUint32(1, path.length);
  b.set(path, 5);
  let o = 5 + path.length;
  o = b.writeUInt8(FILE_TYPES.indexOf(s.type), o);
  // size as an unsigned 64-bit integer (a safe integer: no BigInt needed).
  if (!(s.size >= 0 && Number.isSafeInteger(s.size))) throw new RangeError(`size ${s.size} is not a whole number from 0 to 2^53 - 1`);
  const sizeHi = Math.floor(s.size / TWO_32);
  v.setUint32(o, sizeHi);
  v.setUint32(o + 4, s.size - sizeHi * TWO_32);
  v.setUint32(o + 8, s.mode >>> 0);
  v.setUint32(o + 12, s.uid >>> 0);
  v.setUint32(o + 16, s.gid >>> 0);
  v.setUint32(o + 20, s.nlink >>> 0);
  // DataView writes a bigint without the intermediate bigints Buffer's writeBigInt64BE makes;
  // like it, it refuses a value outside 64 bits (mtime and ctime signed, the inode unsigned).
  v.setBigInt64(o + 24, s.mtimeNs >= INT64_MIN && s.mtimeNs <= INT64_MAX ? s.mtimeNs : outOfRange('mtime_ns', s.mtimeNs));
  v.setBigInt64(o + 32, s.ctimeNs >= INT64_MIN && s.ctimeNs <= INT64_MAX ? s.ctimeNs : outOfRange('ctime_ns', s.ctimeNs));
  v.setBigUint64(o + 40, s.inode); // the low 64 bits, as BigInt.asUintN(64, inode)
  o += 48;
  o = b.writeUInt8(content ? HASH_ALGORITHMS.indexOf(content.algorithm) : NONE8, o);
  o = b.writeUInt8(content ? content.value.length : 0, o);
  if (content) {
    b.set(content.value, o);
    o += content.value.length;
  }
  v.setUint32(o, target ? target.length : NONE32);
  o += 4;
  if (target) {
    b.set(target, o);
    o += target.length;
  }
  o = b.writeUInt16BE(error ? error.length : NONE16, o);
  if (error) {
    b.set(error, o);
    o += error.length;
  }
  o = b.writeUInt8(xattrs ? xattrs.length : 0, o);
  if (xattrs) {
    b.set(xattrs, o);
    o += xattrs.length;
  }
  // Appended only when present, so a state without named attribute values digests as before.
  if (values) {
    v.setUint32(o, values.length);
    b.set(values, o + 4);
    o += 4 + values.length;
  }
  return b.subarray(0, o);
}

function outOfRange(field: string, value: bigint): never {
  throw new RangeError(`${field} ${value} is outside the signed 64-bit range`);
}

/**
 * The digest of a path and its state: the first 8 bytes of SHA-256 over a fixed encoding of
 * both. Absent optional parts (null or undefined alike) encode as "none", so a state read back
 * from Postgres digests like the one the agent sent.
 */
export function entryDigest(path: Buffer, s: FileState): bigint {
  return leadingInt64(sha256(encodeEntry(path, s)));
}

/** The SHA-256 whose first 8 bytes are entryDigest(path, s), as a latin1 string (see pathDigestLatin1). */
export function entryDigestLatin1(path: Uint8Array, s: FileState): string {
  return sha256Latin1(encodeEntry(path, s));
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
