import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { ChangeSource, FileState, PolicyRule } from '../../core/model.js';
import type { PathRules } from '../../core/policy-match.js';
import { deltaKind } from '../change-kind.js';
import { resultState } from '../hashing/hash-results.js';
import { decodeState } from '../store/state-codec.js';
import type { Change, LocalStore } from '../store/local-store.js';
import type { HashPool } from './hash-pool.js';
import { GONE, SAME, unpackResults, type HashResult } from './hash-worker.js';
import { pathAt, pathCount, type PathBatch } from './path-batch.js';
import { comparePathKeys, keyToPath } from '../store/path-key.js';
import { planShards } from './shard-plan.js';
import { NO_RULE, REMOVED_DELETED, REMOVED_GONE, type ShardChunk } from './shard-chunk.js';
import { walkInThread } from './walk-in-thread.js';
import { walkScope } from './walk-scope.js';
import type { WalkEntry } from './walker.js';
import { xattrWants } from '../xattrs.js';

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
  /**
   * Sharded (default: whenever it can be): the tree is split into subtrees that scan threads walk,
   * re-check and hash side by side (scan-threads.ts). Not with a per-rule file limit (which paths
   * are over it depends on walk order) nor with a rule that follows symlinks (loop detection needs
   * the whole path from the root), nor when the entries near the root are too many to plan
   * (shard-plan.ts, MAX_PLANNED): those scans walk in order on one thread.
   */
  readonly sharded?: boolean;
}

const BATCH_FILES = 512;
const YIELD_EVERY = 512;
const RECORD_EVERY = 5000;
const STAT_BATCH = 2048;

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
  let statJobs: { path: Buffer; known: Buffer; rule: PolicyRule; regular: boolean }[] = [];
  const perRule = new Map<string, number>();
  const overLimit = new Set<string>();
  // When changes were detected: read once per batch of results, not per file.
  let now = opts.clock();
  const change = (path: Buffer, before: FileState | undefined, after: FileState | null, rule: PolicyRule | undefined = opts.rules.match(path)?.rule) => {
    if (after?.error) counts.errors++;
    // A change; or not one under the rule, but not the same state either: 'refreshed'.
    const kind = deltaKind(before ?? null, after, rule?.attributes);
    if (!kind) return;
    const first = kind === 'created' && opts.wasCovered !== undefined && !opts.wasCovered(path);
    pending.push({ path, kind, state: after, source: first ? 'baseline' : opts.source, detectedAt: now });
    if (kind !== 'refreshed') counts.changes++;
    if (pending.length >= RECORD_EVERY) opts.record(pending.splice(0));
  };

  const settle = (path: Buffer, known: FileState | undefined, rule: PolicyRule, r: HashResult) => {
    if (r.kind === 'hashed') counts.bytes += r.bytes;
    change(path, known, resultState(r, rule.hashAlgorithm), rule);
  };

  const dispatch = async (wait = true) => {
    if (!batch.length) return;
    const jobs = batch;
    batch = [];
    await track(
      opts.pool
        .hash(
          jobs.map((j) => j.path),
          jobs.map((j) => j.rule.hashAlgorithm),
          jobs.map((j) => j.rule.maxHashBytes ?? 0),
          jobs.map((j) => j.regular),
          jobs.map((j) => xattrWants(j.rule.attributes)),
        )
        .then((results) => {
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

  // Re-check: lstat and the comparison with the encoded baseline state run in the workers; only
  // paths whose stat data changed are decoded here and read again.
  const dispatchStats = async () => {
    if (!statJobs.length) return;
    const jobs = statJobs;
    statJobs = [];
    const algorithms = jobs.map((j) => (j.rule.maxHashBytes !== null ? '' : j.rule.hashAlgorithm));
    await track(
      opts.pool.compare(jobs.map((j) => j.path), jobs.map((j) => j.known), algorithms).then((verdicts) => {
        now = opts.clock();
        for (let i = 0; i < jobs.length; i++) {
          const verdict = verdicts[i];
          if (verdict === SAME) continue; // unchanged: not read
          const { path, known, rule, regular } = jobs[i]!;
          if (verdict === GONE) {
            change(path, decodeState(known), null, rule);
            continue;
          }
          batch.push({ path, known: decodeState(known), rule, regular });
          if (batch.length >= BATCH_FILES) void dispatch(false);
        }
        opts.onProgress?.(counts);
      }),
    );
  };

  const visit = async (e: WalkEntry, known: Buffer | undefined, rule: PolicyRule) => {
    const n = (perRule.get(rule.name) ?? 0) + 1;
    perRule.set(rule.name, n);
    if (opts.maxFilesPerRule && n > opts.maxFilesPerRule) {
      overLimit.add(rule.name);
      return;
    }
    counts.files++;
    const regular = e.type === 'regular';
    if (known && !opts.fullHash) {
      statJobs.push({ path: e.path, known, rule, regular });
      if (statJobs.length >= STAT_BATCH) await dispatchStats();
      return;
    }
    // New paths (and a full re-hash): regular files are read; directories, symlinks and special
    // files are lstat'ed (and readlink'ed) in the workers, never opened.
    batch.push({ path: e.path, known: known && decodeState(known), rule, regular });
    if (batch.length >= BATCH_FILES) await dispatch();
  };
  // A rule over its file limit is not fully seen: what is missing from it is not reported deleted.
  const mayDelete = (p: Buffer) => {
    const m = opts.rules.match(p);
    return m !== null && !overLimit.has(m.rule.name);
  };
  const deleted = (key: Buffer, value: Buffer) => {
    const path = keyToPath(key);
    if (mayDelete(path)) change(path, decodeState(value), null);
  };

  const shardable = !opts.maxFilesPerRule && !opts.rules.rules.some((r) => r.followSymlinks);
  const units = (opts.sharded ?? true) && shardable ? planShards(root, walkScope(root, opts.rules)) : null;
  if (units) {
    const onChunk = (c: ShardChunk) => {
      counts.files += c.files;
      now = opts.clock();
      const ruleAt = (i: number) => (i === NO_RULE ? undefined : opts.rules.rules[i]);
      // An empty known state: none (a new path).
      const knownAt = (known: PathBatch, i: number) => {
        const k = pathAt(known, i);
        return k.length ? decodeState(k) : undefined;
      };
      if (c.hashed) {
        const results = unpackResults(c.hashed.results);
        results.forEach((r, i) => settle(Buffer.from(pathAt(c.hashed!.paths, i)), knownAt(c.hashed!.known, i), ruleAt(c.hashed!.rules[i]!)!, r));
      }
      if (c.removed) {
        for (let i = 0, n = pathCount(c.removed.paths); i < n; i++) {
          const path = Buffer.from(pathAt(c.removed.paths, i));
          const kind = c.removed.kinds[i];
          if (kind === REMOVED_DELETED && !mayDelete(path)) continue;
          change(path, knownAt(c.removed.known, i), null, kind === REMOVED_GONE ? ruleAt(c.removed.rules[i]!) : undefined);
        }
      }
      opts.onProgress?.(counts);
    };
    await opts.pool.shards.run({ root, units, rules: opts.rules.rules, store: opts.store.location, fullHash: opts.fullHash }, onChunk);
    opts.record(pending.splice(0));
    opts.onProgress?.(counts);
    return;
  }

  // The baseline stays encoded here: keys compare with walk paths byte for byte (comparePathKeys
  // treats '/' as the key's 0x00), states are decoded only for paths that changed.
  const baseline = opts.store.baseline.encodedUnder(root)[Symbol.iterator]();
  let b = baseline.next();
  let steps = 0;
  // The walk (directory listings, sorted) runs on its own thread, ahead of this loop.
  for await (const chunk of walkInThread(root, opts.rules.rules)) for (const e of chunk) {
    // Baseline entries before this path in walk order were not found: deleted.
    let order = -1;
    while (!b.done && (order = comparePathKeys(b.value.key, e.path)) < 0) {
      deleted(b.value.key, b.value.value);
      b = baseline.next();
    }
    let known: Buffer | undefined;
    if (!b.done && order === 0) {
      known = b.value.value;
      b = baseline.next();
    }
    const rule = opts.rules.match(e.path)?.rule;
    if (rule) await visit(e, known, rule);
    else if (known) change(e.path, decodeState(known), null);
    if (++steps % YIELD_EVERY === 0) {
      opts.onProgress?.(counts);
      now = opts.clock();
      await yieldToLoop(); // let acks, commands and the watcher through
    }
  }
  for (; !b.done; b = baseline.next()) deleted(b.value.key, b.value.value);
  if (overLimit.size) counts.limited = [...new Set([...(counts.limited ?? []), ...overLimit])];
  await dispatchStats();
  // Stat results may queue files to hash: drain until nothing is left in flight.
  await drain();
  await dispatch();
  await drain();
  opts.record(pending.splice(0));
  opts.onProgress?.(counts);
}
