import type { Database } from 'lmdb';
import type { FileState } from '../../core/model.js';
import { keyOrderedRange } from './key-ordered-range.js';
import { isLongKey, longKey, unpackLong } from './long-keys.js';
import { keysUnderEnd, keyToPath, pathToKey, withoutTrailingSlashes } from './path-key.js';
import { decodeState } from './state-codec.js';

/**
 * The baseline: path → last known state, keyed by the path's bytes, never all in memory. Read
 * here; written only by the journal (journal.ts), with the delta that reports the change. Keys
 * too long for LMDB live in a second database (long-keys.ts); every read below sees both as one.
 */
export interface Baseline {
  get(path: Buffer): FileState | undefined;
  /** Entries at or below a path, in the order of a depth-first walk with sorted entries. */
  under(root: Buffer): Iterable<{ path: Buffer; state: FileState }>;
  /**
   * The same entries undecoded: the key (path-key.ts) and the encoded state (state-codec.ts), for
   * the scan, which decodes only what it needs and leaves the rest to its worker threads. Both
   * are copies, the caller's to keep (lmdb-js hands out views of buffers it reuses).
   */
  encodedUnder(root: Buffer): Iterable<{ key: Buffer; value: Buffer }>;
  size(): number;
}

/** The encoded state stored for a key, from whichever database holds it (a view: decode or copy it). */
function encodedStateOf(db: Database<Buffer, Buffer>, longDb: Database<Buffer, Buffer>, key: Buffer): Buffer | undefined {
  if (!isLongKey(key)) return db.get(key);
  const v = longDb.get(longKey(key));
  if (!v) return undefined;
  const whole = unpackLong(v);
  return whole.key.equals(key) ? whole.value : undefined;
}

export function createBaseline(db: Database<Buffer, Buffer>, longDb: Database<Buffer, Buffer>): Baseline {
  function* encodedUnder(root: Buffer) {
    const rootKey = pathToKey(withoutTrailingSlashes(root));
    // In key order (see path-key.ts) everything at or below root is one contiguous range.
    for (const { key, value } of keyOrderedRange(db, longDb, rootKey, keysUnderEnd(rootKey))) yield { key: Buffer.from(key), value: Buffer.from(value) };
  }
  return {
    get(p) {
      const v = encodedStateOf(db, longDb, pathToKey(p));
      return v ? decodeState(v) : undefined;
    },
    *under(root) {
      for (const { key, value } of encodedUnder(root)) yield { path: keyToPath(key), state: decodeState(value) };
    },
    encodedUnder,
    size: () => db.getCount() + longDb.getCount(),
  };
}
