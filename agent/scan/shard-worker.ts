/**
 * One scan thread of sharded scans (scan-threads.ts), kept between scans. For each run it takes
 * units (shard-plan.ts) from a counter shared with the other scan threads, walks each one sorted,
 * merges it with the unit's key range of the baseline (opened read-only here), re-checks known
 * paths against the stat fields their listing took (recheckListed; recheckOne lstat's the path
 * where the listing took none), reads new and changed files (hashBatch), and posts only what the scanning thread must record: hashed
 * results and removed paths. Unchanged paths never leave this thread, so a re-check costs the
 * scanning thread almost nothing. Backpressure: at most MAX_AHEAD chunks unread.
 */
import { getPriority, setPriority } from 'node:os';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { createPathRules } from '../../core/policy-match.js';
import { openBaselineRanges } from '../store/baseline-ranges.js';
import hashBatch, { DIFFERENT, GONE, LSTAT_ONLY, OPEN, recheckListed, recheckOne } from './hash-worker.js';
import { packPaths, transferablesOf } from './path-batch.js';
import { comparePathKeys, keyToPath } from '../store/path-key.js';
import { walkScope } from './walk-scope.js';
import { ENTRY_TYPES, walkSorted, type WalkEntry } from './walker.js';
import { MAX_AHEAD, NO_RULE, STOP, REMOVED_DELETED, REMOVED_GONE, REMOVED_UNCOVERED, type ShardChunk, type ShardJob, type ShardThreadData, type ShardUnitData } from './shard-chunk.js';
import { xattrWants } from '../xattrs.js';

const HASH_BATCH = 512;
const REMOVED_BATCH = 2048;
/** Covered entries after which a chunk is posted even if empty, so progress moves. */
const PROGRESS_EVERY = 16384;
const NONE = Buffer.alloc(0);

interface Pending {
  readonly path: Buffer;
  readonly known: Buffer | undefined;
  readonly rule: number;
  readonly regular: boolean;
}

async function run(d: ShardJob, thread: ShardThreadData): Promise<void> {
  const rules = createPathRules(d.rules);
  const root = Buffer.from(d.root);
  const scope = walkScope(root, rules);
  const baseline = d.store ? openBaselineRanges(d.store) : null;

  let files = 0;
  let toHash: Pending[] = [];
  let removed: { path: Buffer; known: Buffer; kind: number; rule: number }[] = [];

  const post = (hashed: ShardChunk['hashed'], done: boolean) => {
    while (Atomics.load(d.ahead, 0) >= MAX_AHEAD) Atomics.wait(d.ahead, 0, MAX_AHEAD, 1000);
    const gone = removed.length
      ? { paths: packPaths(removed.map((r) => r.path)), known: packPaths(removed.map((r) => r.known)), kinds: Uint8Array.from(removed, (r) => r.kind), rules: Uint16Array.from(removed, (r) => r.rule) }
      : null;
    const chunk: ShardChunk = { files, hashed, removed: gone, done };
    const transfer: ArrayBuffer[] = [];
    if (hashed) transfer.push(...transferablesOf(hashed.paths), ...transferablesOf(hashed.known), hashed.rules.buffer as ArrayBuffer, hashed.results.words.buffer as ArrayBuffer, hashed.results.digests.buffer as ArrayBuffer);
    if (gone) transfer.push(...transferablesOf(gone.paths), ...transferablesOf(gone.known), gone.kinds.buffer as ArrayBuffer, gone.rules.buffer as ArrayBuffer);
    Atomics.add(d.ahead, 0, 1);
    d.port.postMessage(chunk, transfer);
    files = 0;
    removed = [];
  };
  const remove = (path: Buffer, known: Buffer, kind: number, rule: number) => {
    removed.push({ path, known, kind, rule });
    if (removed.length >= REMOVED_BATCH) post(null, false);
  };

  const flushHash = () => {
    if (!toHash.length) return;
    const jobs = toHash;
    toHash = [];
    const paths = packPaths(jobs.map((j) => j.path));
    const ruleOf = (j: Pending) => d.rules[j.rule]!;
    const results = hashBatch({
      paths,
      algorithms: jobs.map((j) => ruleOf(j).hashAlgorithm),
      maxBytes: jobs.map((j) => ruleOf(j).maxHashBytes ?? 0),
      regular: jobs.map((j) => (j.regular ? OPEN : LSTAT_ONLY)),
      xattrs: jobs.map((j) => xattrWants(ruleOf(j).attributes)),
      bytesPerSecond: thread.bytesPerSecond,
    });
    post({ paths, known: packPaths(jobs.map((j) => j.known ?? NONE)), rules: Uint16Array.from(jobs, (j) => j.rule), results }, false);
  };
  const hash = (p: Pending) => {
    toHash.push(p);
    if (toHash.length >= HASH_BATCH) flushHash();
  };

  // A rule with max_hash_size trusts any digest (''), others only their own algorithm's.
  const compareAlgorithms = d.rules.map((r) => (r.maxHashBytes !== null ? '' : r.hashAlgorithm));

  const ruleIndex = new Map(d.rules.map((r, i) => [r, i]));
  const scanUnit = (u: ShardUnitData) => {
    const known = baseline ? baseline.range(Buffer.from(u.start), Buffer.from(u.end))[Symbol.iterator]() : [][Symbol.iterator]();
    let b = known.next();
    // Nothing known in the unit (a first scan): listed without stat fields, which only a re-check
    // uses (every path is read, and lstat'ed there).
    const listing = b.done ? { listDirectory: null } : {};
    const visit = (e: WalkEntry) => {
      // Baseline entries before this path in walk order were not met: deleted. (Keys and states
      // are views until the next step: copied only when kept.)
      let order = -1;
      while (!b.done && (order = comparePathKeys(b.value.key, e.path)) < 0) {
        remove(keyToPath(b.value.key), Buffer.from(b.value.value), REMOVED_DELETED, NO_RULE);
        b = known.next();
      }
      const state = !b.done && order === 0 ? b.value.value : undefined;
      const m = rules.match(e.path);
      if (!m) {
        if (state) remove(e.path, Buffer.from(state), REMOVED_UNCOVERED, NO_RULE);
      } else {
        const rule = ruleIndex.get(m.rule)!;
        const regular = e.type === 'regular';
        // Stat fields from the listing where it took them, else an lstat of the path.
        const verdict = !state || d.fullHash ? DIFFERENT : e.stats ? recheckListed(e.stats, e.slot, state, compareAlgorithms[rule]!) : recheckOne(e.path, state, compareAlgorithms[rule]!);
        if (verdict === GONE) remove(e.path, Buffer.from(state!), REMOVED_GONE, rule);
        else if (verdict === DIFFERENT) hash({ path: e.path, known: state && Buffer.from(state), rule, regular });
        if (++files >= PROGRESS_EVERY) post(null, false);
      }
      if (state) b = known.next();
    };
    // Two loops, each over one kind of iterable, so neither is compiled for both.
    if (u.subtree) for (const e of walkSorted(Buffer.from(u.subtree), { ...scope, ...listing, skipRoot: true })) visit(e); // the subtree's directory is an entry of the unit before
    else for (const e of u.entries) visit({ path: Buffer.from(e.path), type: ENTRY_TYPES[e.type]!, depth: 0, stats: null, slot: 0 });
    for (; !b.done; b = known.next()) remove(keyToPath(b.value.key), Buffer.from(b.value.value), REMOVED_DELETED, NO_RULE);
  };

  try {
    for (let u = Atomics.add(d.next, 0, 1); u < d.units.length; u = Atomics.add(d.next, 0, 1)) scanUnit(d.units[u]!);
    flushHash();
  } finally {
    await baseline?.close();
  }
  // Last, after the baseline is closed: once every thread has said done, the scanning thread may
  // stop the threads (close, idle timeout) and close the store; none is inside LMDB then.
  post(null, true);
}

function serve(thread: ShardThreadData): void {
  if (thread.niceIncrement) {
    try {
      setPriority(Math.min(19, getPriority() + thread.niceIncrement));
    } catch {
      // Not permitted: scan at the current priority.
    }
  }
  // One run at a time, in the order they come (the next may arrive while this one closes its
  // baseline). A failed run throws out of the thread: scan-threads.ts sees the error, fails the
  // run and replaces the thread.
  let runs = Promise.resolve();
  parentPort!.on('message', (job: ShardJob | typeof STOP) => {
    if (job === STOP) {
      void runs.then(() => parentPort!.close()); // nothing else keeps the thread: it exits
      return;
    }
    runs = runs.then(() => run(job, thread)).catch((err: unknown) => {
      queueMicrotask(() => {
        throw err;
      });
    });
  });
}

if (!isMainThread && parentPort && (workerData as Partial<ShardThreadData> | null)?.bytesPerSecond !== undefined) serve(workerData as ShardThreadData);
