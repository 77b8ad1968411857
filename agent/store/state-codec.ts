import type { BigIntStats } from 'node:fs';
import { SLOT_CTIME, SLOT_GID, SLOT_INO, SLOT_MODE, SLOT_MTIME, SLOT_SIZE, SLOT_UID } from '../native/stat-slots.js';
import { CHANGE_KINDS, CHANGE_SOURCES, FILE_TYPES, HASH_ALGORITHMS, type Digest, type FileDelta, type FileState, type FileType, type HashAlgorithm } from '../../core/model.js';

/**
 * Compact binary encoding of the agent's LMDB values (baseline states and queued deltas). Written
 * and read for every file of every scan, so it avoids the generic protobuf machinery: fixed-width
 * header, then the optional parts. Version byte first, so the layout can change later.
 */
const VERSION = 1;
const HAS_SHA = 1;
const HAS_TARGET = 2;
const HAS_ERROR = 4;
const HAS_DIGEST = 8;
const HAS_XATTRS = 16;
const HAS_ATTR_VALUES = 32;
const STATE_HEADER = 1 + 1 + 4 * 4 + 8 * 4 + 1;

function stateLength(s: FileState): number {
  return (
    STATE_HEADER +
    (s.sha256 ? 32 : 0) +
    (s.symlinkTarget ? 4 + s.symlinkTarget.length : 0) +
    (s.error ? 2 + Buffer.byteLength(s.error) : 0) +
    (s.digest ? 2 + s.digest.value.length : 0) +
    (s.xattrs ? 32 : 0) +
    (s.attrValues ? 4 + s.attrValues.length : 0)
  );
}

function writeState(s: FileState, b: Buffer, at: number): number {
  let o = at;
  b[o++] = VERSION;
  b[o++] = FILE_TYPES.indexOf(s.type);
  o = b.writeUInt32LE(s.mode >>> 0, o);
  o = b.writeUInt32LE(s.uid >>> 0, o);
  o = b.writeUInt32LE(s.gid >>> 0, o);
  o = b.writeUInt32LE(s.nlink >>> 0, o);
  o = b.writeDoubleLE(s.size, o);
  o = b.writeBigInt64LE(s.mtimeNs, o);
  o = b.writeBigInt64LE(s.ctimeNs, o);
  o = b.writeBigUInt64LE(s.inode, o);
  b[o++] = (s.sha256 ? HAS_SHA : 0) | (s.symlinkTarget ? HAS_TARGET : 0) | (s.error ? HAS_ERROR : 0) | (s.digest ? HAS_DIGEST : 0) | (s.xattrs ? HAS_XATTRS : 0) | (s.attrValues ? HAS_ATTR_VALUES : 0);
  if (s.sha256) o += s.sha256.copy(b, o);
  if (s.symlinkTarget) {
    o = b.writeUInt32LE(s.symlinkTarget.length, o);
    o += s.symlinkTarget.copy(b, o);
  }
  if (s.error) {
    const len = Buffer.byteLength(s.error);
    o = b.writeUInt16LE(len, o);
    o += b.write(s.error, o);
  }
  if (s.digest) {
    b[o++] = HASH_ALGORITHMS.indexOf(s.digest.algorithm);
    b[o++] = s.digest.value.length;
    o += s.digest.value.copy(b, o);
  }
  if (s.xattrs) o += s.xattrs.copy(b, o);
  if (s.attrValues) {
    o = b.writeUInt32LE(s.attrValues.length, o);
    o += s.attrValues.copy(b, o);
  }
  return o;
}

function readState(b: Buffer, at: number): { state: FileState; end: number } {
  let o = at;
  if (b[o++] !== VERSION) throw new Error('unknown local state encoding');
  const type = FILE_TYPES[b[o++]!] ?? 'unknown';
  const mode = b.readUInt32LE(o);
  const uid = b.readUInt32LE(o + 4);
  const gid = b.readUInt32LE(o + 8);
  const nlink = b.readUInt32LE(o + 12);
  const size = b.readDoubleLE(o + 16);
  const mtimeNs = b.readBigInt64LE(o + 24);
  const ctimeNs = b.readBigInt64LE(o + 32);
  const inode = b.readBigUInt64LE(o + 40);
  o += 48;
  const flags = b[o++]!;
  let sha256: Buffer | null = null;
  let symlinkTarget: Buffer | null = null;
  let error: string | null = null;
  if (flags & HAS_SHA) {
    sha256 = Buffer.from(b.subarray(o, o + 32));
    o += 32;
  }
  if (flags & HAS_TARGET) {
    const len = b.readUInt32LE(o);
    symlinkTarget = Buffer.from(b.subarray(o + 4, o + 4 + len));
    o += 4 + len;
  }
  if (flags & HAS_ERROR) {
    const len = b.readUInt16LE(o);
    error = b.toString('utf8', o + 2, o + 2 + len);
    o += 2 + len;
  }
  let digest: Digest | null = null;
  if (flags & HAS_DIGEST) {
    const algorithm = HASH_ALGORITHMS[b[o]!] as Digest['algorithm'];
    const len = b[o + 1]!;
    digest = { algorithm, value: Buffer.from(b.subarray(o + 2, o + 2 + len)) };
    o += 2 + len;
  }
  let xattrs: Buffer | null = null;
  if (flags & HAS_XATTRS) {
    xattrs = Buffer.from(b.subarray(o, o + 32));
    o += 32;
  }
  let attrValues: Buffer | null = null;
  if (flags & HAS_ATTR_VALUES) {
    const len = b.readUInt32LE(o);
    attrValues = Buffer.from(b.subarray(o + 4, o + 4 + len));
    o += 4 + len;
  }
  return { state: { type, size, mode, uid, gid, mtimeNs, ctimeNs, inode, nlink, sha256, symlinkTarget, error, digest, xattrs, attrValues }, end: o };
}

/**
 * What a stat-only re-check asks of an encoded baseline state, read in place (a re-check asks it of
 * every path, and decoding would allocate a state per path): does it hold the same type, size,
 * mode, owner, group, mtime, ctime and inode as st? Same fields as sameStat in change-kind.ts.
 */
export function encodedSameStat(b: Buffer, type: FileType, st: BigIntStats): boolean {
  return (
    b[0] === VERSION &&
    FILE_TYPES[b[1]!] === type &&
    b.readUInt32LE(2) === Number(st.mode) >>> 0 &&
    b.readUInt32LE(6) === Number(st.uid) >>> 0 &&
    b.readUInt32LE(10) === Number(st.gid) >>> 0 &&
    b.readDoubleLE(18) === Number(st.size) &&
    b.readBigInt64LE(26) === st.mtimeNs &&
    b.readBigInt64LE(34) === st.ctimeNs &&
    b.readBigUInt64LE(42) === st.ino
  );
}

/**
 * encodedSameStat against the stat fields of a native listing (listing.ts, the entry's at o),
 * word by word: no Stats object, no BigInt.
 */
export function encodedSameListedStat(b: Buffer, type: FileType, s: Uint32Array, o: number): boolean {
  return (
    b[0] === VERSION &&
    FILE_TYPES[b[1]!] === type &&
    b.readUInt32LE(2) === s[o + SLOT_MODE] &&
    b.readUInt32LE(6) === s[o + SLOT_UID] &&
    b.readUInt32LE(10) === s[o + SLOT_GID] &&
    b.readDoubleLE(18) === s[o + SLOT_SIZE]! + s[o + SLOT_SIZE + 1]! * 2 ** 32 &&
    b.readUInt32LE(26) === s[o + SLOT_MTIME] &&
    b.readUInt32LE(30) === s[o + SLOT_MTIME + 1] &&
    b.readUInt32LE(34) === s[o + SLOT_CTIME] &&
    b.readUInt32LE(38) === s[o + SLOT_CTIME + 1] &&
    b.readUInt32LE(42) === s[o + SLOT_INO] &&
    b.readUInt32LE(46) === s[o + SLOT_INO + 1]
  );
}

/** True when the encoded state records an error (read in place). */
export function encodedHasError(b: Buffer): boolean {
  return (b[STATE_HEADER - 1]! & HAS_ERROR) !== 0;
}

/** The encoded state's digest algorithm, null when it has none (read in place). */
export function encodedDigestAlgorithm(b: Buffer): HashAlgorithm | null {
  const flags = b[STATE_HEADER - 1]!;
  if (flags & HAS_SHA) return 'sha256';
  if (!(flags & HAS_DIGEST)) return null;
  let o = STATE_HEADER;
  if (flags & HAS_TARGET) o += 4 + b.readUInt32LE(o);
  if (flags & HAS_ERROR) o += 2 + b.readUInt16LE(o);
  return (HASH_ALGORITHMS[b[o]!] as HashAlgorithm | undefined) ?? null;
}

export function encodeState(s: FileState): Buffer {
  const b = Buffer.allocUnsafe(stateLength(s));
  writeState(s, b, 0);
  return b;
}

export function decodeState(b: Buffer): FileState {
  return readState(b, 0).state;
}

/** seq (8) kind (1) source (1) detectedAt ms (8) path length (4) path, has state (1) [state]. */
export function encodeDelta(d: FileDelta): Buffer {
  const b = Buffer.allocUnsafe(8 + 1 + 1 + 8 + 4 + d.path.length + 1 + (d.state ? stateLength(d.state) : 0));
  let o = b.writeDoubleLE(d.seq, 0);
  b[o++] = CHANGE_KINDS.indexOf(d.kind);
  b[o++] = CHANGE_SOURCES.indexOf(d.source);
  o = b.writeDoubleLE(d.detectedAt.getTime(), o);
  o = b.writeUInt32LE(d.path.length, o);
  o += d.path.copy(b, o);
  b[o++] = d.state ? 1 : 0;
  if (d.state) writeState(d.state, b, o);
  return b;
}

export function decodeDelta(b: Buffer): FileDelta {
  const seq = b.readDoubleLE(0);
  const kind = CHANGE_KINDS[b[8]!]!;
  const source = CHANGE_SOURCES[b[9]!]!;
  const detectedAt = new Date(b.readDoubleLE(10));
  const len = b.readUInt32LE(18);
  const path = Buffer.from(b.subarray(22, 22 + len));
  const state = b[22 + len] ? readState(b, 23 + len).state : null;
  return { seq, path, kind, state, detectedAt, source };
}
