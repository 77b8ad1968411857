import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { ChangeSource, FileState } from '../../proto/model.js';
import { classifyChange, readStatStateSync, regularState } from '../file-state.js';
import type { Change, LocalStore } from '../local-store.js';
import type { HashPool } from './hash-pool.js';
import { STAT_SLOTS, type HashResult } from './hash-worker.js';
import { pathToKey } from './path-key.js';
import { walkSorted, type WalkEntry } from './walker.js';

export interface ScanCounts {
  files: number;
  bytes: number;
  errors: number;
  changes: number;
}

export interface ScanTreeOptions {
  readonly store: LocalStore;
  readonly pool: HashPool;
  readonly clock: () => Date;
  /** The policy covers this path: it is recorded. */
  covers(path: Buffer): boolean;
  /** The walk goes into this directory (covered, or above a covered path). */
  enter(path: Buffer, depth: number): boolean;
  /** Read every file again instead of trusting unchanged stat data. */
  readonly fullHash: boolean;
  readonly source: ChangeSource;
  /** Paths the previous policy covered; a created path it did not is a first baseline. */
  wasCovered?(path: Buffer): boolean;
  /** Receives changes in batches; records them (baseline + queue). */
  record(changes: Change[]): void;
  onProgress?(counts: Readonly<ScanCounts>): void;
  /** Files larger than this are recorded without a hash; 0: no limit. */
  readonly maxHashBytes?: number;
}

const BATCH_FILES = 512;
const YIELD_EVERY = 512;
const RECORD_EVERY = 5000;
const STAT_BATCH = 2048;

/** True when the stat data a re-check compares is unchanged. */
export function sameStat(a: Omit<FileState, 'sha256' | 'symlinkTarget' | 'error'>, b: FileState): boolean {
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

/**
 * Scans one root against the baseline in a single pass: the sorted walk and the baseline (same
 * order) are merged, so deletions are found without a set of seen paths and memory stays flat
 * whatever the tree's size. Regular files go to the hashing pool in batches (every core busy);
 * with a baseline entry and no full hash, a file whose stat data is unchanged is not read at all.
 */
export async function scanTree(root: Buffer, opts: ScanTreeOptions, counts: ScanCounts): Promise<void> {
  const pending: Change[] = [];
  const inflight: Promise<void>[] = [];
  const maxInflight = opts.pool.threads * 3;
  const maxBytes = opts.maxHashBytes ?? 0;
  let batch: { path: Buffer; known: FileState | undefined }[] = [];
  let statJobs: { path: Buffer; known: FileState }[] = [];

  const change = (path: Buffer, before: FileState | undefined, after: FileState | null) => {
    if (after?.error) counts.errors++;
    const kind = classifyChange(before ?? null, after);
    if (!kind) return;
    const first = kind === 'created' && opts.wasCovered !== undefined && !opts.wasCovered(path);
    pending.push({ path, kind, state: after, source: first ? 'baseline' : opts.source, detectedAt: opts.clock() });
    counts.changes++;
    if (pending.length >= RECORD_EVERY) opts.record(pending.splice(0));
  };

  const settle = (path: Buffer, known: FileState | undefined, r: HashResult) => {
    switch (r.kind) {
      case 'hashed':
        counts.bytes += r.bytes;
        return change(path, known, regularState(r.stat, r.digest ? Buffer.from(r.digest) : null));
      case 'vanished':
        return change(path, known, null);
      case 'not_regular':
        return change(path, known, readStatStateSync(path));
      case 'error': {
        const st = readStatStateSync(path);
        return change(path, known, st ? { ...st, sha256: null, error: r.code } : null);
      }
    }
  };

  const dispatch = async (wait = true) => {
    if (!batch.length) return;
    const jobs = batch;
    batch = [];
    await track(
      opts.pool.hash(jobs.map((j) => j.path), 'sha256', maxBytes).then((results) => {
        results.forEach((r, i) => settle(jobs[i]!.path, jobs[i]!.known, r));
        opts.onProgress?.(counts);
      }),
      wait,
    );
  };

  // Work in flight on the pool, bounded: the walk waits for the oldest job when it is full.
  // Jobs started from a job's own completion (stat → hash) never wait, or they could wait on
  // themselves.
  const track = async (p: Promise<void>, wait = true) => {
    inflight.push(p);
    if (wait && inflight.length >= maxInflight) await inflight.shift();
  };

  // Re-check: lstat in the workers; only files whose stat data changed are read.
  const dispatchStats = async () => {
    if (!statJobs.length) return;
    const jobs = statJobs;
    statJobs = [];
    await track(
      opts.pool.stat(jobs.map((j) => j.path)).then((st) => {
        for (let i = 0; i < jobs.length; i++) {
          const o = i * STAT_SLOTS;
          const { path, known } = jobs[i]!;
          if (st[o] === 0n) {
            change(path, known, null);
            continue;
          }
          const same =
            st[o + 1] === 0n &&
            Number(st[o + 2]) === known.size &&
            Number(st[o + 3]) === known.mode &&
            Number(st[o + 4]) === known.uid &&
            Number(st[o + 5]) === known.gid &&
            st[o + 6] === known.mtimeNs &&
            st[o + 7] === known.ctimeNs &&
            st[o + 8] === known.inode;
          if (same) continue; // unchanged: not read
          batch.push({ path, known });
          if (batch.length >= BATCH_FILES) void dispatch(false);
        }
        opts.onProgress?.(counts);
      }),
    );
  };

  const visit = async (e: WalkEntry, known: FileState | undefined) => {
    counts.files++;
    if (e.type !== 'regular') return change(e.path, known, readStatStateSync(e.path));
    if (known && !opts.fullHash && known.type === 'regular' && known.sha256 && !known.error) {
      statJobs.push({ path: e.path, known });
      if (statJobs.length >= STAT_BATCH) await dispatchStats();
      return;
    }
    batch.push({ path: e.path, known });
    if (batch.length >= BATCH_FILES) await dispatch();
  };

  const baseline = opts.store.baselineUnder(root)[Symbol.iterator]();
  let b = baseline.next();
  let steps = 0;
  for (const e of walkSorted(root, { include: () => true, enter: (p, d) => opts.enter(p, d) })) {
    const key = pathToKey(e.path);
    // Baseline entries before this path in walk order were not found: deleted.
    while (!b.done && Buffer.compare(pathToKey(b.value.path), key) < 0) {
      if (opts.covers(b.value.path)) change(b.value.path, b.value.state, null);
      b = baseline.next();
    }
    let known: FileState | undefined;
    if (!b.done && b.value.path.equals(e.path)) {
      known = b.value.state;
      b = baseline.next();
    }
    if (opts.covers(e.path)) await visit(e, known);
    else if (known) change(e.path, known, null);
    if (++steps % YIELD_EVERY === 0) {
      opts.onProgress?.(counts);
      await yieldToLoop(); // let acks, commands and the watcher through
    }
  }
  for (; !b.done; b = baseline.next()) if (opts.covers(b.value.path)) change(b.value.path, b.value.state, null);
  await dispatchStats();
  // Stat results may queue files to hash: drain until nothing is left in flight.
  while (inflight.length) await inflight.shift();
  await dispatch();
  while (inflight.length) await inflight.shift();
  opts.record(pending.splice(0));
  opts.onProgress?.(counts);
}
