/**
 * What a sharded scan's threads and the scanning thread exchange (scan-threads.ts starts the
 * threads, shard-worker.ts is one): the data each thread starts with, the runs it takes and the
 * chunks it posts.
 */
import type { MessagePort } from 'node:worker_threads';
import type { PolicyRule } from '../../core/model.js';
import type { PackedResults } from './hash-worker.js';
import type { PathBatch } from './path-batch.js';

export interface ShardUnitData {
  readonly subtree: Uint8Array | null;
  readonly entries: readonly { readonly path: Uint8Array; readonly type: number }[];
  readonly start: Uint8Array;
  readonly end: Uint8Array;
}

/** What each scan thread starts with (scan-threads.ts), for every run it takes. */
export interface ShardThreadData {
  /** Added to this thread's nice value (Linux: per thread). */
  readonly niceIncrement: number;
  /** This thread's share of the read rate limit; 0: none. */
  readonly bytesPerSecond: number;
}

/** One run of a sharded scan, posted to every scan thread. */
export interface ShardJob {
  /** The scan's root (the walk scope's file system is the root's). */
  readonly root: Uint8Array;
  readonly units: readonly ShardUnitData[];
  /** Shared by every scan thread of the run: [0] the next unit to take. */
  readonly next: Int32Array;
  /** This thread's: [0] chunks posted and not yet read. */
  readonly ahead: Int32Array;
  /** Where this thread posts its chunks for the run. */
  readonly port: MessagePort;
  readonly rules: PolicyRule[];
  /** The local store's directory, or null: no baseline (everything is new). */
  readonly store: string | null;
  readonly fullHash: boolean;
}

/** Why a path is removed from the baseline. */
export const REMOVED_GONE = 0; // known, covered, and the re-check found it gone
export const REMOVED_DELETED = 1; // in the baseline, not met by the walk
export const REMOVED_UNCOVERED = 2; // met by the walk, in the baseline, no rule covers it now
export const NO_RULE = 0xffff;

export interface ShardChunk {
  /** Walk entries a rule covers, since the last chunk. */
  readonly files: number;
  /** Read (or lstat'ed) paths, with their baseline states (empty: none) and rule indexes. */
  readonly hashed: { readonly paths: PathBatch; readonly known: PathBatch; readonly rules: Uint16Array; readonly results: PackedResults } | null;
  readonly removed: { readonly paths: PathBatch; readonly known: PathBatch; readonly kinds: Uint8Array; readonly rules: Uint16Array } | null;
  /** The last chunk of this thread. */
  readonly done: boolean;
}

export const MAX_AHEAD = 8;

/** Posted to a scan thread instead of a job: exit once the runs it has are done. */
export const STOP = 'stop';
