/**
 * A hashing batch's results (hash-file.ts), packed for the trip from a scan or hashing thread to
 * the main thread: per path RESULT_WORDS 32-bit words (the stat words in the layout of listing.ts,
 * written there by fstat, then the kind, the file type, the bytes read and the digest's length),
 * the digests side by side in one byte array, and the rare parts (error codes, symlink targets,
 * extended attributes' digests) by index. One structured clone of a few arrays instead of objects
 * and buffers per file, and no BigInt on the hashing side.
 */
import { FILE_TYPES, type FileState, type FileType, type HashAlgorithm } from '../../core/model.js';
import { regularState } from '../file-state.js';
import type { StatFields } from '../stat-fields.js';
import { SLOT_GID, SLOT_INO, SLOT_MODE, SLOT_MTIME, SLOT_CTIME, SLOT_NLINK, SLOT_SIZE, SLOT_UID, STAT_SLOTS } from '../native/stat-slots.js';

export type HashedStat = StatFields;

export type HashResult =
  | { readonly kind: 'hashed'; readonly stat: HashedStat; readonly digest: Uint8Array | null; readonly bytes: number; readonly xattrs?: Buffer | null; readonly attrValues?: Buffer | null }
  /** Gone (ENOENT/ENOTDIR): not an error. */
  | { readonly kind: 'vanished' }
  /** Not hashed: not a regular file (any more), or unreadable (the state carries the error code). */
  | { readonly kind: 'state'; readonly state: FileState };

export interface PackedResults {
  readonly words: Uint32Array;
  readonly digests: Uint8Array;
  readonly digestLength: number;
  /** By index, for 'state' results: the error code, the symlink target. */
  readonly errors: Record<number, string>;
  readonly targets: Record<number, Uint8Array>;
  /** By index: the extended attributes' digest, where they were read. */
  readonly xattrs: Record<number, Uint8Array>;
  /** By index: the named attributes' values (FileState.attrValues), where they were read. */
  readonly attrValues: Record<number, Uint8Array>;
}

/** Words of one result: the stat words, then these. */
export const RESULT_WORDS = STAT_SLOTS + 5;
const KIND = STAT_SLOTS;
const TYPE = STAT_SLOTS + 1;
const READ = STAT_SLOTS + 2; // two words
const DIGEST_LENGTH = STAT_SLOTS + 4;

/** Result kinds; NOT_READ: a regular file over max_hash_size (its stat, no digest). */
export const HASHED = 0;
export const VANISHED = 1;
export const STATE = 2;
export const NOT_READ = 3;

const DIGEST_BYTES: Record<HashAlgorithm, number> = { sha256: 32, sha512: 64, blake2b512: 64 };

/** Room for n results whose digests are at most as long as the longest of these algorithms'. */
export function createResults(n: number, algorithms: readonly HashAlgorithm[]): PackedResults {
  const digestLength = Math.max(32, ...algorithms.map((a) => DIGEST_BYTES[a]));
  return { words: new Uint32Array(n * RESULT_WORDS), digests: new Uint8Array(n * digestLength), digestLength, errors: {}, targets: {}, xattrs: {}, attrValues: {} };
}

/** Result i's words start here; its stat words are to be written at this offset. */
export const resultAt = (i: number) => i * RESULT_WORDS;

/** A hashed (or NOT_READ) result whose stat words are in place. */
export function putHashed(p: PackedResults, i: number, digest: Uint8Array | null, bytes: number): void {
  const o = resultAt(i);
  p.words[o + KIND] = digest ? HASHED : NOT_READ;
  if (!digest) return;
  p.words[o + READ] = bytes % 2 ** 32;
  p.words[o + READ + 1] = Math.floor(bytes / 2 ** 32);
  p.words[o + DIGEST_LENGTH] = digest.length;
  p.digests.set(digest, i * p.digestLength);
}

export function putVanished(p: PackedResults, i: number): void {
  p.words[resultAt(i) + KIND] = VANISHED;
}

/** A state read with lstat (not a regular file, or not readable). */
export function putState(p: PackedResults, i: number, s: FileState): void {
  const o = resultAt(i);
  const w = p.words;
  w[o + KIND] = STATE;
  w[o + TYPE] = FILE_TYPES.indexOf(s.type);
  w[o + SLOT_MODE] = s.mode;
  w[o + SLOT_UID] = s.uid;
  w[o + SLOT_GID] = s.gid;
  w[o + SLOT_NLINK] = s.nlink;
  w[o + SLOT_SIZE] = s.size % 2 ** 32;
  w[o + SLOT_SIZE + 1] = Math.floor(s.size / 2 ** 32);
  const view = viewOf(w);
  view.setBigInt64((o + SLOT_MTIME) * 4, s.mtimeNs, true);
  view.setBigInt64((o + SLOT_CTIME) * 4, s.ctimeNs, true);
  view.setBigUint64((o + SLOT_INO) * 4, s.inode, true);
  if (s.error) p.errors[i] = s.error;
  if (s.symlinkTarget) p.targets[i] = new Uint8Array(s.symlinkTarget); // a copy: a view would post its whole pool slab
  if (s.xattrs) p.xattrs[i] = new Uint8Array(s.xattrs);
  if (s.attrValues) p.attrValues[i] = new Uint8Array(s.attrValues);
}

/** The extended attributes' digest and named values as read after the content (null: not read). */
export function putXattrs(p: PackedResults, i: number, x: Buffer | null, values: Buffer | null = null): void {
  if (x) p.xattrs[i] = new Uint8Array(x);
  else delete p.xattrs[i];
  if (values) p.attrValues[i] = new Uint8Array(values);
  else delete p.attrValues[i];
}

export function resultCount(p: PackedResults): number {
  return p.words.length / RESULT_WORDS;
}

export function kindAt(p: PackedResults, i: number): number {
  return p.words[resultAt(i) + KIND]!;
}

const viewOf = (w: Uint32Array) => new DataView(w.buffer, w.byteOffset, w.byteLength);

function statAt(w: Uint32Array, view: DataView, o: number): StatFields {
  return {
    size: w[o + SLOT_SIZE]! + w[o + SLOT_SIZE + 1]! * 2 ** 32,
    mode: w[o + SLOT_MODE]!,
    uid: w[o + SLOT_UID]!,
    gid: w[o + SLOT_GID]!,
    mtimeNs: view.getBigInt64((o + SLOT_MTIME) * 4, true),
    ctimeNs: view.getBigInt64((o + SLOT_CTIME) * 4, true),
    inode: view.getBigUint64((o + SLOT_INO) * 4, true),
    nlink: w[o + SLOT_NLINK]!,
  };
}

export function unpackResults(p: PackedResults): HashResult[] {
  const n = resultCount(p);
  const out: HashResult[] = new Array(n);
  const w = p.words;
  const view = viewOf(w);
  const digests = Buffer.from(p.digests.buffer, p.digests.byteOffset, p.digests.byteLength);
  for (let i = 0; i < n; i++) {
    const o = resultAt(i);
    const kind = w[o + KIND];
    if (kind === VANISHED) out[i] = { kind: 'vanished' };
    else if (kind === STATE) {
      const target = p.targets[i];
      out[i] = {
        kind: 'state',
        state: {
          type: (FILE_TYPES[w[o + TYPE]!] ?? 'unknown') as FileType,
          ...statAt(w, view, o),
          sha256: null,
          symlinkTarget: target ? Buffer.from(target.buffer, target.byteOffset, target.byteLength) : null,
          error: p.errors[i] ?? null,
          xattrs: xattrsAt(p, i),
          attrValues: attrValuesAt(p, i),
        },
      };
    } else {
      const read = kind === HASHED;
      out[i] = {
        kind: 'hashed',
        stat: statAt(w, view, o),
        digest: read ? digests.subarray(i * p.digestLength, i * p.digestLength + w[o + DIGEST_LENGTH]!) : null,
        bytes: read ? w[o + READ]! + w[o + READ + 1]! * 2 ** 32 : 0,
        xattrs: xattrsAt(p, i),
        attrValues: attrValuesAt(p, i),
      };
    }
  }
  return out;
}

function attrValuesAt(p: PackedResults, i: number): Buffer | null {
  const x = p.attrValues[i];
  return x ? Buffer.from(x.buffer, x.byteOffset, x.byteLength) : null;
}

function xattrsAt(p: PackedResults, i: number): Buffer | null {
  const x = p.xattrs[i];
  return x ? Buffer.from(x.buffer, x.byteOffset, x.byteLength) : null;
}

/** The state a result stands for, null when the path vanished (the digest is copied out of the batch's array). */
export function resultState(r: HashResult, algorithm: HashAlgorithm): FileState | null {
  switch (r.kind) {
    case 'hashed':
      return regularState(r.stat, r.digest ? Buffer.from(r.digest) : null, algorithm, r.xattrs ?? null, r.attrValues ?? null);
    case 'vanished':
      return null;
    case 'state':
      return r.state;
  }
}
