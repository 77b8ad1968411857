import { keysUnderEnd, pathToKey, withoutTrailingSlashes } from '../store/path-key.js';
import { walkSorted, type EntryType, type WalkOptions } from './walker.js';

/**
 * One piece of a sharded scan (scan-threads.ts): a subtree walked by a scan thread, or a short run
 * of explicit entries near the root; either way merged with the baseline keys in [start, end).
 * The units of a plan, in order, cover the root's whole key range without overlap, so every
 * baseline entry is merged by exactly one unit and every walk entry is seen exactly once.
 */
export interface ShardUnit {
  /** Walk below this directory (the directory itself is an entry of the unit before), or null. */
  readonly subtree: Buffer | null;
  /** With no subtree: the unit's walk entries, in walk order. */
  readonly entries: readonly { readonly path: Buffer; readonly type: EntryType }[];
  readonly start: Buffer;
  readonly end: Buffer;
}

/** Directories this deep below the root become subtree units (for /usr: /usr/share/doc, /usr/lib/x86_64-linux-gnu…). */
export const SHARD_DEPTH = 2;
/** Explicit entries per unit at most (the files near the root: /usr/bin/*). */
export const SHARD_GROUP = 256;
/**
 * Entries near the root a plan holds at most. The plan is made on the scanning thread and every
 * scan thread gets a copy: a huge flat directory near the root (a mail spool) is not split up
 * front; planShards gives up and the scan walks in order instead, in flat memory.
 */
export const MAX_PLANNED = 65_536;

const withByte = (key: Buffer, byte: number) => Buffer.concat([key, Buffer.of(byte)]);

/**
 * Splits the walk of root (under scope, the same scope the walk of each unit uses) into units:
 * lists the directories down to depth, in walk order. Null: more than maxPlanned entries down there. Keys below a directory d are exactly
 * [d‖0x00, d‖0x01) (path-key.ts), and root's whole range is [root, root‖0x01) ('/': [0x00, 0x01)).
 */
export function planShards(root: Buffer, scope: WalkOptions, depth = SHARD_DEPTH, groupSize = SHARD_GROUP, maxPlanned = MAX_PLANNED): ShardUnit[] | null {
  const trimmed = withoutTrailingSlashes(root);
  const rootKey = pathToKey(trimmed);
  const units: ShardUnit[] = [];
  let group: { path: Buffer; type: EntryType }[] = [];
  let start = rootKey;
  const close = (end: Buffer) => {
    units.push({ subtree: null, entries: group, start, end });
    group = [];
    start = end;
  };
  const shallow = walkSorted(trimmed, { ...scope, enter: (p, d) => d < depth && scope.enter(p, d), listDirectory: null });
  let planned = 0;
  for (const e of shallow) {
    if (++planned > maxPlanned) return null;
    if (group.length >= groupSize) close(pathToKey(e.path));
    group.push({ path: e.path, type: e.type });
    if (e.depth === depth && e.type === 'directory' && scope.enter(e.path, depth)) {
      const key = pathToKey(e.path);
      close(withByte(key, 0));
      units.push({ subtree: e.path, entries: [], start, end: withByte(key, 1) });
      start = withByte(key, 1);
    }
  }
  close(keysUnderEnd(rootKey));
  return units;
}
