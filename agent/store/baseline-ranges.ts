import type { Database, DatabaseOptions } from 'lmdb';
import { keyOrderedRange } from './key-ordered-range.js';
import { openEnv, openLongBaselineDb } from './lmdb-env.js';

/** Baseline entries by key range, for a scan's worker threads (LMDB is shared by the threads of a process). */
export interface BaselineRanges {
  /**
   * Keys in [start, end), in key order, with their encoded states: views that are valid only until
   * the next step (lmdb-js reuses its buffers); copy what must be kept. Keys too long for LMDB
   * (long-keys.ts) come whole, in their place.
   */
  range(start: Buffer, end: Buffer): Iterable<{ key: Buffer; value: Buffer }>;
  close(): Promise<void>;
}

// The reader hands out views of lmdb-js's own read buffers instead of a copy of every key and
// value (two native allocations per entry, a good part of a re-check's cost): its key and value
// codecs return subarrays. The bytes are the same as the store's binary encoding.
const viewKeys = {
  writeKey: (key: Buffer, target: Buffer, start: number) => start + key.copy(target, start),
  readKey: (source: Buffer, start: number, end: number) => source.subarray(start, end),
};
const viewValues = { encode: (value: Buffer) => value, decode: (source: Buffer, size: number) => source.subarray(0, size) };

/** Opens the store's directory (LocalStore.location) for reading baseline ranges. */
export function openBaselineRanges(path: string): BaselineRanges {
  const env = openEnv(path);
  // lmdb-js takes keyEncoder and encoder per database; its typings list them on the root only.
  const baseline: Database<Buffer, Buffer> = env.openDB('baseline', { keyEncoder: viewKeys, encoder: viewValues } as DatabaseOptions);
  const long = openLongBaselineDb(env);
  return {
    range: (start, end) => keyOrderedRange(baseline, long, start, end),
    close: () => env.close(),
  };
}
