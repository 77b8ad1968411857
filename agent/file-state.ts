import { createHash } from 'node:crypto';
import { statFields } from './stat-fields.js';
import { accessSync, constants, fstat, lstatSync, read, readlinkSync, type BigIntStats } from 'node:fs';
import { access, lstat, open, readlink, type FileHandle } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { Attribute, ChangeKind, FileState, FileType, HashAlgorithm } from '../core/model.js';

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

function fromStats(st: BigIntStats, extra: Partial<Pick<FileState, 'sha256' | 'symlinkTarget' | 'error'>> = {}): FileState {
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

const HASH_CHUNK = 1 << 20;
const MAX_HASH_ATTEMPTS = 3;

/** An open file: its fstat and positional reads (a FileHandle, or a descriptor the kernel gave). */
interface OpenFile {
  stat(): Promise<BigIntStats>;
  read(into: Buffer, position: number): Promise<number>;
}

const handleFile = (fh: FileHandle): OpenFile => ({
  stat: () => fh.stat({ bigint: true }),
  read: async (into, position) => (await fh.read(into, 0, into.length, position)).bytesRead,
});
const fstatBig = promisify((fd: number, cb: (err: NodeJS.ErrnoException | null, st: BigIntStats) => void) => fstat(fd, { bigint: true }, cb));
const readAt = promisify((fd: number, into: Buffer, position: number, cb: (err: NodeJS.ErrnoException | null, n: number) => void) => read(fd, into, 0, into.length, position, cb));
const descriptorFile = (fd: number): OpenFile => ({ stat: () => fstatBig(fd), read: (into, position) => readAt(fd, into, position) });

/**
 * One read of an open file, streamed in 1 MiB chunks (huge and sparse files never sit in memory),
 * with fstat before and after: `stable` when size, mtime and ctime did not move while it was read.
 */
async function hashOnce(file: OpenFile, algorithm: HashAlgorithm): Promise<{ digest: Buffer; st: BigIntStats; stable: boolean } | { changedType: true }> {
  const before = await file.stat();
  if (!before.isFile()) return { changedType: true };
  const hash = createHash(algorithm);
  const chunk = Buffer.allocUnsafe(HASH_CHUNK);
  for (let position = 0; ; ) {
    const n = await file.read(chunk, position);
    if (n === 0) break;
    hash.update(chunk.subarray(0, n));
    position += n;
  }
  const after = await file.stat();
  const stable = after.size === before.size && after.mtimeNs === before.mtimeNs && after.ctimeNs === before.ctimeNs;
  return { digest: hash.digest(), st: after, stable };
}

/**
 * The digest of a regular file by path. Opened with O_NOFOLLOW|O_NONBLOCK so a path swapped for a
 * symlink or FIFO after lstat can neither redirect nor block the read; a file that changed while
 * it was read is opened and read again (three times at most).
 */
async function hashRegularFile(path: Buffer, algorithm: HashAlgorithm): Promise<{ sha256: Buffer; st: BigIntStats } | { changedType: true }> {
  for (let attempt = 1; ; attempt++) {
    const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      const res = await hashOnce(handleFile(fh), algorithm);
      if ('changedType' in res) return res;
      if (res.stable || attempt >= MAX_HASH_ATTEMPTS) return { sha256: res.digest, st: res.st };
    } finally {
      await fh.close();
    }
  }
}

/**
 * The state of a file through a descriptor the kernel opened for this process (a fanotify
 * close-write, agent/watch/write-capture.ts): readable even when its path is gone. Same rules as
 * readFileState; the caller closes the descriptor.
 */
export async function readOpenFileState(fd: number, opts: { maxHashBytes?: number | null; algorithm?: HashAlgorithm } = {}): Promise<FileState> {
  const file = descriptorFile(fd);
  const st = await file.stat();
  if (!st.isFile() || (opts.maxHashBytes != null && st.size > BigInt(opts.maxHashBytes))) return fromStats(st);
  try {
    for (let attempt = 1; ; attempt++) {
      const res = await hashOnce(file, opts.algorithm ?? 'sha256');
      if ('changedType' in res) return fromStats(st);
      if (res.stable || attempt >= MAX_HASH_ATTEMPTS) return regularState(fromStats(res.st), res.digest, opts.algorithm);
    }
  } catch (err) {
    return fromStats(st, { error: (err as NodeJS.ErrnoException).code ?? 'EIO' });
  }
}

/**
 * The state of one path, read now: lstat (never follows symlinks), plus the content hash for
 * regular files and the target for symlinks. FIFOs, sockets and devices are recorded by type and
 * never opened. Null when the path does not exist (it vanished). A path that cannot be read gets
 * its lstat data and an error code instead of a hash.
 */
export async function readFileState(
  path: Buffer,
  opts: { hash: boolean; maxHashBytes?: number | null; algorithm?: HashAlgorithm } = { hash: true },
): Promise<FileState | null> {
  let st: BigIntStats;
  try {
    st = await lstat(path, { bigint: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw err;
  }
  try {
    if (st.isSymbolicLink()) return fromStats(st, { symlinkTarget: await readlink(path, { encoding: 'buffer' }) });
    // A directory the agent cannot list is an error state too: what is below it goes unseen.
    if (st.isDirectory()) await access(path, constants.R_OK | constants.X_OK);
    if (st.isFile() && opts.hash && !(opts.maxHashBytes != null && st.size > BigInt(opts.maxHashBytes))) {
      const res = await hashRegularFile(path, opts.algorithm ?? 'sha256');
      if ('changedType' in res) return readFileState(path, opts);
      return regularState(fromStats(res.st), res.sha256, opts.algorithm);
    }
    return fromStats(st);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    if (code === 'ENOENT') return null;
    if (code === 'ELOOP') return readFileState(path, opts); // became a symlink between lstat and open
    return fromStats(st, { error: code });
  }
}

const ALL_R: readonly Attribute[] = ['type', 'perm', 'inode', 'nlink', 'owner', 'group', 'size', 'mtime', 'ctime', 'hash'];

/**
 * What kind of change takes `before` to `after`, judged on the rule's attributes (AIDE's way; the
 * default is group R); null when nothing the rule checks changed. Existence and the file type
 * always count. Content (hash, size, a symlink's target, becoming unreadable) is 'modified'; a
 * file checked with 'growing' may grow but not shrink. Permissions, owner, group, mtime, ctime,
 * inode, link count and extended attributes are 'attributes'. A directory's size, times and link count change with its
 * entries, which are reported themselves, so only its permissions and owners count.
 */
export function classifyChange(before: FileState | null, after: FileState | null, attributes: readonly Attribute[] = ALL_R): ChangeKind | null {
  if (!before && !after) return null;
  if (!before) return 'created';
  if (!after) return 'deleted';
  if (before.type !== after.type) return 'modified';
  const has = (a: Attribute) => attributes.includes(a);
  if (before.error !== after.error) return 'modified';
  const dir = before.type === 'directory';
  if (!dir) {
    if (!bufEq(before.symlinkTarget, after.symlinkTarget)) return 'modified';
    // Digests made with different algorithms (the rule changed) are not compared.
    if (has('hash') && digestAlgorithm(before) === digestAlgorithm(after)) {
      if (!bufEq(before.sha256, after.sha256) || !bufEq(before.digest?.value ?? null, after.digest?.value ?? null)) return 'modified';
    }
    if (has('size') && before.size !== after.size) return 'modified';
    if (has('growing') && after.size < before.size) return 'modified';
  }
  const attrs =
    (has('perm') && (before.mode & 0o7777) !== (after.mode & 0o7777)) ||
    (has('owner') && before.uid !== after.uid) ||
    (has('group') && before.gid !== after.gid) ||
    (!dir && has('mtime') && before.mtimeNs !== after.mtimeNs) ||
    (!dir && has('ctime') && before.ctimeNs !== after.ctimeNs) ||
    (!dir && has('inode') && before.inode !== after.inode) ||
    (!dir && has('nlink') && before.nlink !== after.nlink) ||
    // Not read on one side (the native addon missing, or the rule just started to ask): not a change.
    (has('xattrs') && !!before.xattrs && !!after.xattrs && !before.xattrs.equals(after.xattrs)) ||
    ((has('acl') || has('selinux')) && !!before.attrValues && !!after.attrValues && !before.attrValues.equals(after.attrValues));
  return attrs ? 'attributes' : null;
}

function bufEq(a: Buffer | null, b: Buffer | null): boolean {
  if (a === null || b === null) return a === b;
  return a.equals(b);
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
    if (st.isSymbolicLink()) return fromStats(st, { symlinkTarget: readlinkSync(path, { encoding: 'buffer' }) });
    if (st.isDirectory()) accessSync(path, constants.R_OK | constants.X_OK);
    return fromStats(st);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    if (code === 'ENOENT') return null;
    return fromStats(st, { error: code });
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

/** True when the stat data a re-check compares is unchanged. */
export function sameStat(a: Pick<FileState, 'type' | 'size' | 'mode' | 'uid' | 'gid' | 'mtimeNs' | 'ctimeNs' | 'inode'>, b: FileState): boolean {
  return (
    a.type === b.type &&
    a.size === b.size &&
    a.mtimeNs === b.mtimeNs &&
    a.ctimeNs === b.ctimeNs &&
    a.inode === b.inode &&
    a.mode === b.mode &&
    a.uid === b.uid &&
    a.gid === b.gid
  );
}

/** Same stat data, link count and digest: nothing for the baseline to learn. */
export function sameState(a: FileState, b: FileState): boolean {
  return (
    sameStat(a, b) &&
    a.nlink === b.nlink &&
    digestAlgorithm(a) === digestAlgorithm(b) &&
    (a.sha256?.equals(b.sha256 ?? Buffer.alloc(0)) ?? b.sha256 === null) &&
    (a.digest?.value.equals(b.digest?.value ?? Buffer.alloc(0)) ?? !b.digest) &&
    (a.xattrs?.equals(b.xattrs ?? Buffer.alloc(0)) ?? !b.xattrs) &&
    (a.attrValues ? !!b.attrValues && a.attrValues.equals(b.attrValues) : !b.attrValues)
  );
}
