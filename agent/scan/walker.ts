import { lstatSync, readdirSync, statSync, type Dirent } from 'node:fs';
import { fileTypeOfMode } from '../file-state.js';
import { nativeListing, type ListDirectory } from './listing.js';
import { SLOT_DTYPE, SLOT_ERRNO, SLOT_MODE, STAT_SLOTS } from '../native/stat-slots.js';
import { withoutTrailingSlashes } from '../store/path-key.js';

export type EntryType = 'regular' | 'directory' | 'symlink' | 'other';

/** Entry types by index, for posting entries between threads as one byte each. */
export const ENTRY_TYPES: readonly EntryType[] = ['regular', 'directory', 'symlink', 'other'];

export interface WalkEntry {
  readonly path: Buffer;
  /** From the listing (the entry's lstat, or its d_type with readdir): enough to route regular files to the hashers. */
  readonly type: EntryType;
  readonly depth: number;
  /**
   * With the native listing: its directory's stat fields (listing.ts), this entry's at `slot`,
   * taken when the directory was listed; a re-check compares them instead of lstat'ing the path.
   * Null for the root and with the readdir listing.
   */
  readonly stats: Uint32Array | null;
  readonly slot: number;
}

export interface WalkOptions {
  /** False: the path and what is below it are left out. */
  include(path: Buffer): boolean;
  /** False: a directory is yielded but not entered (depth limit, other file system, not covered). */
  enter(path: Buffer, depth: number): boolean;
  /** True: a symlink to a directory is walked into as well (find -L); loops are cut. */
  follow?(path: Buffer): boolean;
  /**
   * True: root itself is not yielded, only what is below it, and a root that cannot be lstat'ed is
   * walked as empty (a unit of a sharded scan).
   */
  skipRoot?: boolean;
  /** How directories are listed (default: the native listing where it is built, else readdir). */
  listDirectory?: ListDirectory | null;
}

const SLASH = 0x2f;

function typeOf(d: Pick<NamedEntry, 'isFile' | 'isDirectory' | 'isSymbolicLink'>): EntryType {
  if (d.isFile()) return 'regular';
  if (d.isDirectory()) return 'directory';
  if (d.isSymbolicLink()) return 'symlink';
  return 'other';
}

/**
 * A directory's entries, sorted by name bytes; stats: the native listing's fields, or null. The
 * walk reads `count`, never the arrays' length: empty arrays have another elements kind than full
 * ones, and a walk meeting both would be deoptimized and compiled again each time it meets a new one.
 */
interface Listing {
  readonly count: number;
  readonly names: readonly string[];
  readonly types: readonly EntryType[];
  readonly stats: Uint32Array | null;
}

const EMPTY: Listing = { count: 0, names: [], types: [], stats: null };
const DT_DIR = 4;
const DT_REG = 8;
const DT_LNK = 10;

function listedType(stats: Uint32Array, o: number): EntryType {
  if (stats[o + SLOT_ERRNO] === 0) {
    const t = fileTypeOfMode(stats[o + SLOT_MODE]!);
    return t === 'regular' || t === 'directory' || t === 'symlink' ? t : 'other';
  }
  // Not stat'ed (vanished since the listing, or not permitted): the type the directory gave.
  const d = stats[o + SLOT_DTYPE];
  return d === DT_REG ? 'regular' : d === DT_DIR ? 'directory' : d === DT_LNK ? 'symlink' : 'other';
}

/** A directory listed with the native listing (each entry's lstat included). */
function statListing(list: ListDirectory, dir: Buffer): Listing {
  const r = list(dir);
  if (typeof r === 'number') return EMPTY; // unreadable or vanished: the directory's own state tells which
  const types = new Array<EntryType>(r.names.length);
  for (let i = 0; i < types.length; i++) types[i] = listedType(r.stats, i * STAT_SLOTS);
  return { count: types.length, names: r.names, types, stats: r.stats };
}

/** A directory entry: its name as latin1 text (one character per byte) and its type. */
interface NamedEntry {
  readonly name: string;
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
}

/**
 * A directory's entries sorted by name bytes. Names are read as latin1 strings, one character per
 * byte (exact for any name, UTF-8 or not): a Buffer per name would cost a native allocation each,
 * which is most of what a listing costs. String order is then byte order.
 */
function sortedEntries(dir: Buffer, list: ListDirectory | null): Listing {
  if (list) return statListing(list, dir);
  let entries: NamedEntry[];
  try {
    entries = readdirSync(dir, { withFileTypes: true, encoding: 'latin1' });
  } catch (err) {
    // A file system that gives no entry types (ext2 without filetype, XFS without ftype, some
    // NFS and FUSE) makes Node lstat each entry, joining the directory (bytes) with the name
    // (text), which it refuses: list with byte names instead (slower, and only here).
    if ((err as NodeJS.ErrnoException).code !== 'ERR_INVALID_ARG_TYPE') return EMPTY; // unreadable or vanished: the directory's own state tells which
    entries = entriesWithByteNames(dir);
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  // Holey arrays of strings, like the native listing's names.
  const names = new Array<string>(entries.length);
  const types = new Array<EntryType>(entries.length);
  for (let i = 0; i < entries.length; i++) {
    names[i] = entries[i]!.name;
    types[i] = typeOf(entries[i]!);
  }
  return { count: entries.length, names, types, stats: null };
}

function entriesWithByteNames(dir: Buffer): NamedEntry[] {
  try {
    const raw = readdirSync(dir, { withFileTypes: true, encoding: 'buffer' }) as unknown as (Dirent & { name: Buffer })[];
    return raw.map((d) => ({ name: d.name.toString('latin1'), isFile: () => d.isFile(), isDirectory: () => d.isDirectory(), isSymbolicLink: () => d.isSymbolicLink() }));
  } catch {
    return [];
  }
}

/**
 * Every path at and below root, depth-first, each directory's entries sorted by name bytes: the
 * order of the baseline's keys (see path-key.ts). Names are bytes. Symlinks are yielded, never
 * followed, so loops cannot make the walk endless. Memory: one sorted listing per level.
 */
export function* walkSorted(given: Buffer, opts: WalkOptions): Generator<WalkEntry> {
  // '/etc/' walks as '/etc': its entries are '/etc/x', never '/etc//x'.
  const root = withoutTrailingSlashes(given);
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(root, { throwIfNoEntry: false });
  } catch (err) {
    // A sharded scan's subtree whose directory became a file (ENOTDIR) or cannot be looked at
    // (EACCES): walked as empty, like a directory the walk cannot list; its own entry, with its
    // error, belongs to another unit.
    if (opts.skipRoot) return;
    throw err;
  }
  if (!st || !opts.include(root)) return;
  const rootType = typeOf(st);
  if (!opts.skipRoot) yield { path: root, type: rootType, depth: 0, stats: null, slot: 0 };
  const list = opts.listDirectory === undefined ? nativeListing() : opts.listDirectory;
  if (rootType !== 'directory' || !opts.enter(root, 0)) return;
  // Identity (device:inode) of each directory on the current path, when symlinks may be followed:
  // a link back to one of them would be a loop.
  const tracking = opts.follow !== undefined;
  const idOf = (p: Buffer) => {
    const s = statSync(p, { throwIfNoEntry: false });
    return s ? `${s.dev}:${s.ino}` : '';
  };
  // Each frame's path also as its latin1 text plus '/', the prefix of its entries' paths.
  const prefix = (dir: Buffer) => (dir.length === 1 && dir[0] === SLASH ? '/' : dir.toString('latin1') + '/');
  const stack: { prefix: string; listing: Listing; i: number; depth: number; id: string }[] = [
    { prefix: prefix(root), listing: sortedEntries(root, list), i: 0, depth: 1, id: tracking ? idOf(root) : '' },
  ];
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const { count, names, types, stats } = top.listing;
    if (top.i >= count) {
      stack.pop();
      continue;
    }
    const i = top.i++;
    const text = top.prefix + names[i]!;
    const path = Buffer.from(text, 'latin1');
    if (!opts.include(path)) continue;
    const type = types[i]!;
    yield { path, type, depth: top.depth, stats, slot: i * STAT_SLOTS };
    let into = type === 'directory' && opts.enter(path, top.depth);
    if (type === 'symlink' && opts.follow?.(path)) into = statSync(path, { throwIfNoEntry: false })?.isDirectory() === true && opts.enter(path, top.depth);
    if (!into) continue;
    const id = tracking ? idOf(path) : '';
    if (tracking && stack.some((f) => f.id === id)) continue; // a loop back to an ancestor
    stack.push({ prefix: text + '/', listing: sortedEntries(path, list), i: 0, depth: top.depth + 1, id });
  }
}
