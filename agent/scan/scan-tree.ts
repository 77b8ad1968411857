import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { ChangeSource, FileState, PolicyRule } from '../../proto/model.js';
import type { PathRules } from '../../proto/policy-match.js';
import { classifyChange, digestAlgorithm, regularState } from '../file-state.js';
import type { Change, LocalStore } from '../local-store.js';
import type { HashPool } from './hash-pool.js';
import { STAT_SLOTS, type HashResult } from './hash-worker.js';
import { comparePathKeys } from './path-key.js';
import { walkInThread } from './walk-in-thread.js';
import type { WalkEntry } from './walker.js';

export interface ScanCounts {
  files: number;
  bytes: number;
  errors: number;
  changes: number;
  /** Rules that reached the file limit in this scan (paths past it were not recorded). */
  limited?: string[];
}

export interface ScanTreeOptions {
  readonly store: LocalStore;
  readonly pool: HashPool;
  readonly clock: () => Date;
  /** Which rule records a path, and which directories the walk enters. */
  readonly rules: PathRules;
  /** Paths recorded per rule at most (null: no limit). */
  readonly maxFilesPerRule?: number | null;
  /** Read every file again instead of trusting unchanged stat data. */
  readonly fullHash: boolean;
  readonly source: ChangeSource;
  /** Paths the previous policy covered; a created path it did not is a first baseline. */
  wasCovered?(path: Buffer): boolean;
  /** Receives changes in batches; records them (baseline + queue). */
  record(changes: Change[]): void;
  onProgress?(counts: Readonly<ScanCounts>): void;
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
  const inflight = new Set<Promise<void>>();
  const maxInflight = opts.pool.threads * 3;
  let batch: { path: Buffer; known: FileState | undefined; rule: PolicyRule; regular: boolean }[] = [];
  let statJobs: { path: Buffer; known: FileState; rule: PolicyRule }[] = [];
  const perRule = new Map<string, number>();
  const overLimit = new Set<string>();
  // When changes were detected: read once per batch of results, not per file.
  let now = opts.clock();
  const refreshes: { path: Buffer; state: FileState }[] = [];
  const change = (path: Buffer, before: FileState | undefined, after: FileState | null, rule: PolicyRule | undefined = opts.rules.match(path)?.rule) => {
    if (after?.error) counts.errors++;
    const kind = classifyChange(before ?? null, after, rule?.attributes);
    if (!kind) {
      // Not a change under the rule, but not the same state either: keep the baseline current.
      if (before && after && !sameState(before, after)) refreshes.push({ path, state: after });
      if (refreshes.length >= RECORD_EVERY) opts.store.refresh(refreshes.splice(0));
      return;
    }
    const first = kind === 'created' && opts.wasCovered !== undefined && !opts.wasCovered(path);
    pending.push({ path, kind, state: after, source: first ? 'baseline' : opts.source, detectedAt: now });
    counts.changes++;
    if (pending.length >= RECORD_EVERY) opts.record(pending.splice(0));
  };

  const settle = (path: Buffer, known: FileState | undefined, rule: PolicyRule, r: HashResult) => {
    switch (r.kind) {
      case 'hashed':
        counts.bytes += r.bytes;
        return change(path, known, regularState(r.stat, r.digest ? Buffer.from(r.digest) : null, rule.hashAlgorithm), rule);
      case 'vanished':
        return change(path, known, null, rule);
      case 'state':
        return change(path, known, r.state, rule);
    }
  };

  const dispatch = async (wait = true) => {
    if (!batch.length) return;
    const jobs = batch;
    batch = [];
    await track(
      opts.pool.hash(jobs.map((j) => j.path), jobs.map((j) => j.rule.hashAlgorithm), jobs.map((j) => j.rule.maxHashBytes ?? 0), jobs.map((j) => j.regular)).then((results) => {
        now = opts.clock();
        results.forEach((r, i) => settle(jobs[i]!.path, jobs[i]!.known, jobs[i]!.rule, r));
        opts.onProgress?.(counts);
      }),
      wait,
    );
  };

  // Work in flight on the pool, bounded: when it is full the walk waits for whichever job ends
  // first (not the oldest: a batch holding a large file would leave the other threads idle).
  // Jobs started from a job's own completion (stat → hash) never wait, or they could wait on
  // themselves.
  // A failed job fails the scan at the next wait (never an unhandled rejection).
  let failure: { error: unknown } | null = null;
  const track = async (p: Promise<void>, wait = true) => {
    const tracked: Promise<void> = p.then(
      () => void inflight.delete(tracked),
      (error: unknown) => {
        inflight.delete(tracked);
        failure ??= { error };
      },
    );
    inflight.add(tracked);
    if (wait && inflight.size >= maxInflight) await Promise.race(inflight);
    if (failure) throw failure.error;
  };
  const drain = async () => {
    while (inflight.size) await Promise.race(inflight);
    if (failure) throw failure.error;
  };

  // Re-check: lstat in the workers; only files whose stat data changed are read.
  const dispatchStats = async () => {
    if (!statJobs.length) return;
    const jobs = statJobs;
    statJobs = [];
    await track(
      opts.pool.stat(jobs.map((j) => j.path)).then((st) => {
        now = opts.clock();
        for (let i = 0; i < jobs.length; i++) {
          const o = i * STAT_SLOTS;
          const { path, known, rule } = jobs[i]!;
          if (st[o] === 0n) {
            change(path, known, null, rule);
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
          batch.push({ path, known, rule, regular: true });
          if (batch.length >= BATCH_FILES) void dispatch(false);
        }
        opts.onProgress?.(counts);
      }),
    );
  };

  const visit = async (e: WalkEntry, known: FileState | undefined, rule: PolicyRule) => {
    const n = (perRule.get(rule.name) ?? 0) + 1;
    perRule.set(rule.name, n);
    if (opts.maxFilesPerRule && n > opts.maxFilesPerRule) {
      overLimit.add(rule.name);
      return;
    }
    counts.files++;
    // Directories, symlinks and special files: lstat (and readlink) in the workers, never opened.
    if (e.type !== 'regular') {
      batch.push({ path: e.path, known, rule, regular: false });
      if (batch.length >= BATCH_FILES) await dispatch();
      return;
    }
    // Trust unchanged stat data only for a state hashed with the rule's algorithm (or not meant to be hashed).
    const stable = known && known.type === 'regular' && !known.error && (digestAlgorithm(known) === rule.hashAlgorithm || rule.maxHashBytes !== null);
    if (known && stable && !opts.fullHash) {
      statJobs.push({ path: e.path, known, rule });
      if (statJobs.length >= STAT_BATCH) await dispatchStats();
      return;
    }
    batch.push({ path: e.path, known, rule, regular: true });
    if (batch.length >= BATCH_FILES) await dispatch();
  };
  // A rule over its file limit is not fully seen: what is missing from it is not reported deleted.
  const mayDelete = (p: Buffer) => {
    const m = opts.rules.match(p);
    return m !== null && !overLimit.has(m.rule.name);
  };

  const baseline = opts.store.baselineUnder(root)[Symbol.iterator]();
  let b = baseline.next();
  let steps = 0;
  // The walk (directory listings, sorted) runs on its own thread, ahead of this loop.
  for await (const chunk of walkInThread(root, opts.rules.rules)) for (const e of chunk) {
    // Baseline entries before this path in walk order were not found: deleted.
    while (!b.done && comparePathKeys(b.value.path, e.path) < 0) {
      if (mayDelete(b.value.path)) change(b.value.path, b.value.state, null);
      b = baseline.next();
    }
    let known: FileState | undefined;
    if (!b.done && b.value.path.equals(e.path)) {
      known = b.value.state;
      b = baseline.next();
    }
    const rule = opts.rules.match(e.path)?.rule;
    if (rule) await visit(e, known, rule);
    else if (known) change(e.path, known, null);
    if (++steps % YIELD_EVERY === 0) {
      opts.onProgress?.(counts);
      now = opts.clock();
      await yieldToLoop(); // let acks, commands and the watcher through
    }
  }
  for (; !b.done; b = baseline.next()) if (mayDelete(b.value.path)) change(b.value.path, b.value.state, null);
  if (overLimit.size) counts.limited = [...new Set([...(counts.limited ?? []), ...overLimit])];
  await dispatchStats();
  // Stat results may queue files to hash: drain until nothing is left in flight.
  await drain();
  await dispatch();
  await drain();
  opts.record(pending.splice(0));
  opts.store.refresh(refreshes.splice(0));
  opts.onProgress?.(counts);
}

/** Same stat data, link count and digest: nothing for the baseline to learn. */
export function sameState(a: FileState, b: FileState): boolean {
  return (
    sameStat(a, b) &&
    a.nlink === b.nlink &&
    digestAlgorithm(a) === digestAlgorithm(b) &&
    (a.sha256?.equals(b.sha256 ?? Buffer.alloc(0)) ?? b.sha256 === null) &&
    (a.digest?.value.equals(b.digest?.value ?? Buffer.alloc(0)) ?? !b.digest)
  );
}
