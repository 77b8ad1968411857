/**
 * A path's state as the agent records it: the file type from a stat, the state of what is not
 * read (directories, symlinks with their target, special files, a path that vanished), and of a
 * regular file with its digest. Reading content is agent/hashing/hash-file.ts; what a difference
 * between two states means is change-kind.ts.
 */
import { accessSync, constants, lstatSync, readlinkSync, type BigIntStats } from 'node:fs';
import type { FileState, FileType, HashAlgorithm } from '../core/model.js';
import { statFields } from './stat-fields.js';

export function fileType(st: BigIntStats): FileType {
  if (st.isFile()) return 'regular';
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'char_device';
  if (st.isBlockDevice()) return 'block_device';
  return 'unknown';
}

/** fileType from the mode bits alone (S_IFMT), for stat fields that come without a Stats object. */
export function fileTypeOfMode(mode: number): FileType {
  switch (mode & 0o170000) {
    case 0o100000:
      return 'regular';
    case 0o040000:
      return 'directory';
    case 0o120000:
      return 'symlink';
    case 0o010000:
      return 'fifo';
    case 0o140000:
      return 'socket';
    case 0o020000:
      return 'char_device';
    case 0o060000:
      return 'block_device';
    default:
      return 'unknown';
  }
}

/** A state from a stat (lstat, or fstat of a held descriptor), without a digest. */
export function stateFromStats(st: BigIntStats, extra: Partial<Pick<FileState, 'sha256' | 'symlinkTarget' | 'error'>> = {}): FileState {
  return {
    type: fileType(st),
    ...statFields(st),
    sha256: extra.sha256 ?? null,
    symlinkTarget: extra.symlinkTarget ?? null,
    error: extra.error ?? null,
  };
}

/**
 * The error of a state the agent could not read because the path was gone when it looked, though
 * the kernel had reported it created or written (docs/delivery.md, "Short-lived files").
 */
export const VANISHED = 'vanished';

/** What is recorded of a path that vanished before it could be read: its type if known, no stat data. */
export function vanishedState(type: FileType): FileState {
  return { type, size: 0, mode: 0, uid: 0, gid: 0, mtimeNs: 0n, ctimeNs: 0n, inode: 0n, nlink: 0, sha256: null, symlinkTarget: null, error: VANISHED };
}

/**
 * Synchronous state of a path that needs no reading of content: directories, symlinks, special
 * files (and regular files when only their stat data is wanted). Null when it does not exist.
 */
export function readStatStateSync(path: Buffer): FileState | null {
  let st: BigIntStats | undefined;
  try {
    st = lstatSync(path, { bigint: true, throwIfNoEntry: false });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    if (code === 'ENOTDIR') return null;
    throw err;
  }
  if (!st) return null;
  try {
    if (st.isSymbolicLink()) return stateFromStats(st, { symlinkTarget: readlinkSync(path, { encoding: 'buffer' }) });
    if (st.isDirectory()) accessSync(path, constants.R_OK | constants.X_OK);
    return stateFromStats(st);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    if (code === 'ENOENT') return null;
    return stateFromStats(st, { error: code });
  }
}

/** A regular file's state from the hashing worker's stat and digest (SHA-256 in its own field). */
export function regularState(
  stat: Omit<FileState, 'type' | 'sha256' | 'symlinkTarget' | 'error' | 'digest'>,
  digest: Buffer | null,
  algorithm: HashAlgorithm = 'sha256',
  xattrs: Buffer | null = stat.xattrs ?? null,
  attrValues: Buffer | null = stat.attrValues ?? null,
): FileState {
  // One object literal, always the same shape: a scan builds one per file read.
  const sha256 = algorithm === 'sha256' ? digest : null;
  return {
    type: 'regular',
    size: stat.size,
    mode: stat.mode,
    uid: stat.uid,
    gid: stat.gid,
    mtimeNs: stat.mtimeNs,
    ctimeNs: stat.ctimeNs,
    inode: stat.inode,
    nlink: stat.nlink,
    sha256,
    symlinkTarget: null,
    error: null,
    digest: digest && algorithm !== 'sha256' ? { algorithm, value: digest } : null,
    xattrs,
    attrValues,
  };
}

/** The algorithm a state's content digest was made with (null: not hashed). */
export function digestAlgorithm(s: FileState): HashAlgorithm | null {
  return s.sha256 ? 'sha256' : (s.digest?.algorithm ?? null);
}
