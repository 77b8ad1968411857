import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { displayPath, type ChangeSource, type FileState, type Policy, type PolicyRule } from '../core/model.js';
import type { ScanSummary as CoreScanSummary } from '../core/scan-summary.js';
import { createPathRules, createRuleMatcher, type PathRules } from '../core/policy-match.js';
import { classifyChange, readFileState, readOpenFileState, sameState, vanishedState } from './file-state.js';
import { readXattrParts, xattrWants } from './xattrs.js';
import type { Change, LocalStore } from './store/local-store.js';
import type { HashPool } from './scan/hash-pool.js';
import { withoutTrailingSlashes } from './store/path-key.js';
import { scanTree, type ScanCounts } from './scan/scan-tree.js';
import { closeEventFd } from './watch/fanotify.js';
import { addReports, leftUnrecorded, plainReport, SEEN, type PathReport } from './watch/path-report.js';
import { watchTrees, type TreeWatcher, type TreeWatcherOptions, type WatchGap } from './watch/tree-watcher.js';
import { createWriteCapture, type HeldWrite, type WriteCapture } from './watch/write-capture.js';

/** What one scan found (core/scan-summary.ts), with the bytes it read and the policy it ran under. */
export interface ScanSummary extends CoreScanSummary {
  readonly bytes: number;
  /** The policy version the scan ran under. */
  readonly policyVersion: number;
}

/**
 * Emits 'queued' (FileDelta[]) whenever new deltas were recorded, and 'status' when what
 * scheduledOnly() or the local store's gap records say has changed.
 */
export interface Monitor extends EventEmitter {
  /** The policy being applied now; null before the first one. */
  readonly policy: Policy | null;
  /** Applies a policy: baselines new paths, drops removed ones, (re)starts watching. */
  applyPolicy(policy: Policy): Promise<ScanSummary>;
  /** Scans every covered path against the baseline now. */
  rescan(fullHash: boolean): Promise<ScanSummary>;
  /** Checks these paths now (what the watcher reported). */
  check(paths: readonly Buffer[]): Promise<void>;
  /** Policy roots and directories the watcher cannot cover, as "path (why)": scheduled scans only. */
  scheduledOnly(): string[];
  /** Resolves when all work queued so far is done. */
  idle(): Promise<void>;
  /** How many scans and checks have been started so far (it moves whenever the monitor works). */
  jobsStarted(): number;
  /** True while a scan or check runs or waits its turn. */
  busy(): boolean;
  close(): Promise<void>;
}

export interface MonitorDeps {
  readonly store: LocalStore;
  /** Hashing threads, shared by every scan. */
  readonly pool: HashPool;
  readonly logger: Logger;
  readonly clock: () => Date;
  /** Watcher options for tests (coalescing window; a watch limit, instead of the policy's max_watches). */
  readonly watch?: Pick<TreeWatcherOptions, 'coalesceMs' | 'maxWatches'>;
  /**
   * Hold written files open with fanotify so one deleted before its check is still read
   * (agent/watch/write-capture.ts; needs root). Default true; VIGIL_CAPTURE=0 turns it off.
   */
  readonly captureWrites?: boolean;
}

const RECORD_BATCH = 500;
/** Paths whose last read time a check remembers (see readMarks in checkPaths). */
const READ_MARKS = 20_000;
/** Paths a real-time check reads at once. */
const CHECK_CONCURRENCY = 32;

export function createMonitor(deps: MonitorDeps): Monitor {
  const { store, logger, clock } = deps;
  const emitter = new EventEmitter();
  let policy: Policy | null = null;
  let pathRules: PathRules = createPathRules([]);
  let covers: (path: Buffer) => boolean = () => false;
  let timers: NodeJS.Timeout[] = [];
  let roots: Buffer[] = [];
  let watcher: TreeWatcher | null = null;
  let capture: WriteCapture | null = null;
  // Paths reported by the watcher and not checked yet: one check takes all of them.
  let toCheck = new Map<string, PathReport>();
  // When a check last read each recently checked path (monotonic): a kernel event read before
  // then is accounted for by what that read found. Insertion order is age order; the oldest go first.
  const readMarks = new Map<string, number>();
  const marks = () => performance.now();
  let checkQueued = false;
  // Everything that touches the baseline runs one at a time, so sequence numbers follow the disk.
  let chain: Promise<unknown> = Promise.resolve();
  let started = 0;
  let waiting = 0;
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    waiting++;
    const run = () => {
      started++;
      return fn();
    };
    const next = chain.then(run, run);
    chain = next.catch(() => undefined).finally(() => waiting--);
    return next;
  };

  const flush = (changes: Change[]) => {
    if (!changes.length) return;
    const deltas = store.record(changes.splice(0));
    emitter.emit('queued', deltas);
  };

  const setPolicy = (p: Policy) => {
    policy = p;
    pathRules = createPathRules(p.rules);
    covers = (path) => pathRules.match(path) !== null;
    const all = p.rules.flatMap((r) => r.paths);
    // Roots below another root are covered by it.
    roots = [...new Set(all)]
      .filter((r) => !all.some((o) => o !== r && (r.startsWith(o.endsWith('/') ? o : `${o}/`) || o === '/')))
      // `/etc/` (a policy stored before the controller normalised paths) is watched as `/etc`, so
      // that the paths reported under it are normalised too.
      .map((r) => withoutTrailingSlashes(Buffer.from(r)));
  };

  /**
   * Scans one root against the baseline (see scan/scan-tree.ts). `wasCovered` tells which paths
   * the previous policy covered: a path it did not is a first baseline (source 'baseline').
   */
  async function scanRoot(
    root: Buffer,
    source: ChangeSource,
    fullHash: boolean,
    changes: Change[],
    counts: ScanCounts,
    wasCovered?: (path: Buffer) => boolean,
  ) {
    flush(changes);
    await scanTree(
      root,
      {
        store,
        pool: deps.pool,
        clock,
        rules: pathRules,
        maxFilesPerRule: policy?.limits.maxFilesPerRule ?? null,
        fullHash,
        source,
        ...(wasCovered ? { wasCovered } : {}),
        record: (batch) => flush(batch),
      },
      counts,
    );
  }

  async function scanAll(source: 'scan' | 'rescan', fullHash: boolean, wasCovered?: (path: Buffer) => boolean): Promise<ScanSummary> {
    const startedAt = clock();
    const counts: ScanCounts = { files: 0, bytes: 0, errors: 0, changes: 0 };
    const changes: Change[] = [];
    for (const root of roots) await scanRoot(root, source, fullHash, changes, counts, wasCovered);
    flush(changes);
    const summary = { filesScanned: counts.files, bytes: counts.bytes, changes: counts.changes, errors: counts.errors, startedAt, finishedAt: clock(), policyVersion: policy?.version ?? 0 };
    logger.info({ ...summary, source }, 'scan finished');
    return summary;
  }

  /** The policy's schedules: stat-only re-checks and full re-hashes, at the shortest interval any rule asks for. */
  function schedule(p: Policy) {
    for (const t of timers) clearInterval(t);
    timers = [];
    if (!p.rules.length) return;
    const every = (seconds: number, fullHash: boolean) => {
      const t = setInterval(() => {
        void serial(() => scanAll('scan', fullHash)).catch((err: unknown) => logger.error({ err, fullHash }, 'scheduled scan failed'));
      }, seconds * 1000);
      t.unref();
      timers.push(t);
    };
    every(Math.min(...p.rules.map((r) => r.recheckSeconds)), false);
    every(Math.min(...p.rules.map((r) => r.rehashSeconds)), true);
  }

  async function restartWatcher() {
    await watcher?.close();
    watcher = null;
    capture?.close();
    capture = deps.captureWrites === false ? null : createWriteCapture({ roots, logger, clock });
    watcher = await watchTrees({
      roots,
      logger,
      clock,
      maxWatches: policy?.limits.maxWatches ?? null,
      ...(capture ? { capture } : {}),
      ...deps.watch,
      onPaths: (reports) => enqueueCheck(reports),
      onGap: (gap) => void serial(() => closeGap(gap)).catch((err: unknown) => logger.error({ err }, 're-scan after a watch gap failed')),
    });
    emitter.emit('status');
  }

  /** Watcher paths wait here while a check runs; the next check takes them all, each once. */
  function enqueueCheck(reports: readonly PathReport[]) {
    addReports(toCheck, reports);
    if (checkQueued) return;
    checkQueued = true;
    void serial(async () => {
      checkQueued = false;
      const batch = [...toCheck.values()];
      toCheck = new Map();
      await checkPaths(batch);
    }).catch((err: unknown) => logger.error({ err }, 'real-time check failed'));
  }

  /** The watcher may have missed changes under gap.root (or its dirs): re-scan now and record the gap. */
  async function closeGap(gap: WatchGap) {
    const counts: ScanCounts = { files: 0, bytes: 0, errors: 0, changes: 0 };
    const changes: Change[] = [];
    for (const dir of gap.dirs ?? [gap.root]) await scanRoot(dir, 'scan', false, changes, counts);
    flush(changes);
    store.addGap({ at: clock(), root: gap.root.toString(), reason: gap.reason, detail: gap.detail, changesFound: counts.changes });
    logger.warn({ root: gap.root.toString(), reason: gap.reason, detail: gap.detail, changesFound: counts.changes }, 'watch gap closed by a re-scan');
    emitter.emit('status');
  }

  /** A path's state now, under its rule (extended attributes when the rule checks them: xattrs, acl, selinux). */
  async function readUnderRule(path: Buffer, rule: PolicyRule) {
    const read = await readFileState(path, { hash: true, maxHashBytes: rule.maxHashBytes, algorithm: rule.hashAlgorithm });
    const wants = xattrWants(rule.attributes);
    return read && wants ? { ...read, ...readXattrParts(path, wants) } : read;
  }

  /**
   * What is known of a path that was gone when checked although the kernel saw it appear or be
   * written (docs/delivery.md, "Short-lived files"): its state read through the held descriptor of
   * its last write, else a state marked vanished; then its deletion.
   */
  async function recordVanished(report: PathReport, before: FileState | null, rule: PolicyRule, held: HeldWrite | null, changes: Change[]) {
    const unread = vanishedState(report.seen & SEEN.DIRECTORY ? 'directory' : 'unknown');
    const state = held ? await readOpenFileState(held.fd, { maxHashBytes: rule.maxHashBytes, algorithm: rule.hashAlgorithm }).catch(() => unread) : unread;
    logger.debug({ path: displayPath(report.path), captured: state !== unread, baselined: !!before }, 'recorded a path that vanished before its check');
    // When the agent saw the write it read, else the first event of the path; the deletion when
    // its event was read (not before the write), else now.
    const seenAt = held ? held.seenAt : report.firstAt;
    const removedAt = report.seen & SEEN.REMOVED ? report.lastAt : clock();
    if (!before || classifyChange(before, state, rule.attributes)) changes.push({ path: report.path, kind: before ? 'modified' : 'created', state, source: 'realtime', detectedAt: seenAt });
    changes.push({ path: report.path, kind: 'deleted', state: null, source: 'realtime', detectedAt: removedAt > seenAt ? removedAt : seenAt });
  }

  async function checkPaths(reports: readonly PathReport[]) {
    const changes: Change[] = [];
    const unique = new Map<string, PathReport>();
    addReports(unique, reports);
    const work = [...unique.values()].flatMap((report) => {
      const rule = pathRules.match(report.path)?.rule;
      return rule ? [{ report, path: report.path, rule }] : [];
    });
    // Paths that just appeared first: behind a backlog, a short-lived file has the best chance of
    // being read before it goes (Array.prototype.sort is stable: the rest keep their order).
    work.sort((a, b) => (b.report.seen & SEEN.CREATED) - (a.report.seen & SEEN.CREATED));
    // Directories scanned during this check. The scan may have read a path below one before a
    // later event of this batch changed it: such paths are read again after the scan.
    const scanned: string[] = [];
    const underScanned = (path: Buffer) => {
      const k = path.toString('latin1');
      return scanned.some((d) => k.startsWith(`${d}/`));
    };
    // Reads run CHECK_CONCURRENCY at a time (a burst of thousands of paths); each result is
    // compared with the baseline in order, after the reads.
    for (let i = 0; i < work.length; i += CHECK_CONCURRENCY) {
      const chunk = work.slice(i, i + CHECK_CONCURRENCY);
      // Every event the kernel queued before these reads is read (and marked) before them, and
      // every write's descriptor held from here on: the marks below tell what a read reflects.
      watcher?.sync();
      capture?.sync();
      const chunkMark = marks();
      const reads = await Promise.all(chunk.map(({ path, rule }) => readUnderRule(path, rule)));
      for (const [k, { report, path, rule }] of chunk.entries()) {
        const again = underScanned(path);
        let readMark = again ? marks() : chunkMark;
        const after = again ? await readUnderRule(path, rule) : reads[k]!;
        const before = store.getBaseline(path);
        const pathKey = path.toString('latin1');
        const unrecorded = !after && leftUnrecorded(report, readMarks.get(pathKey)) && before?.type !== 'directory';
        if (!after) {
          // Gone: every event from before the read is in the kernel's queues by now. Read them,
          // so that what this check records for the path (its deletion, or the vanished file with
          // the content of its last write) accounts for all of them: a later check does not
          // record them again (what came after the read, if anything, is coalesced into it).
          watcher?.sync();
          capture?.sync();
          readMark = marks();
        }
        // Whatever the kernel reported before readMark is accounted for by what this read finds.
        readMarks.delete(pathKey);
        readMarks.set(pathKey, readMark);
        if (readMarks.size > READ_MARKS) readMarks.delete(readMarks.keys().next().value!);
        if (unrecorded) {
          const held = capture?.take(path) ?? null;
          try {
            await recordVanished(report, before ?? null, rule, held, changes);
          } finally {
            if (held) closeEventFd(held.fd);
          }
          continue;
        }
        // What this read reflects: writes seen before it. A later one's descriptor stays held for
        // the path's next check (none comes for a path that is gone).
        const held = capture?.take(path, after ? readMark : undefined);
        if (held) closeEventFd(held.fd);
        const kind = classifyChange(before ?? null, after, rule.attributes);
        if (kind) changes.push({ path, kind, state: after, source: 'realtime', detectedAt: clock() });
        // Not a change under the rule (a log that grew), but the baseline follows the disk.
        else if (before && after && !sameState(before, after)) changes.push({ path, kind: 'refreshed', state: after, source: 'realtime', detectedAt: clock() });
        if (!after && before?.type === 'directory') {
          for (const child of store.baselineUnder(path)) {
            if (!child.path.equals(path) && !unique.has(child.path.toString('latin1'))) {
              changes.push({ path: child.path, kind: 'deleted', state: null, source: 'realtime', detectedAt: clock() });
            }
          }
        }
        if (after?.type === 'directory' && before?.type !== 'directory') {
          // A new directory: files may have landed in it before the watch on it existed.
          const counts: ScanCounts = { files: 0, bytes: 0, errors: 0, changes: 0 };
          flush(changes);
          await scanRoot(path, 'realtime', false, changes, counts);
          // Recorded now, so that later paths of this batch compare against the new baseline.
          flush(changes);
          scanned.push(path.toString('latin1'));
        }
      }
      flush(changes);
    }
    flush(changes);
  }

  const monitor = Object.assign(emitter, {
    applyPolicy(p: Policy) {
      return serial(async () => {
        // What the previous policy covered: the one in force, or at start-up the one last stored.
        const previous = policy ?? store.policy();
        const oldMatch = createRuleMatcher(previous?.rules ?? []);
        const oldCovers = (path: Buffer) => oldMatch(path) !== null;
        setPolicy(p);
        store.setPolicy(p);
        // Paths the new policy no longer covers leave the baseline, and the controller's current
        // state, without a history row: refreshed with no state.
        const drop: Change[] = [];
        for (const { path } of store.baselineUnder(Buffer.from('/'))) {
          if (!covers(path) && oldCovers(path)) drop.push({ path, kind: 'refreshed', state: null, source: 'scan', detectedAt: clock() });
        }
        for (let i = 0; i < drop.length; i += RECORD_BATCH) flush(drop.slice(i, i + RECORD_BATCH));
        // Watch first, then scan: a change the scan has already passed is reported by the watcher
        // (its check runs after the scan), so none falls between the two.
        await restartWatcher();
        const summary = await scanAll('scan', false, oldCovers);
        schedule(p);
        logger.info({ version: p.version, roots: roots.map((r) => r.toString()), dropped: drop.length }, 'policy applied');
        return summary;
      });
    },
    rescan(fullHash: boolean) {
      return serial(() => scanAll('rescan', fullHash));
    },
    check(paths: readonly Buffer[]) {
      const at = clock();
      return serial(() => checkPaths(paths.map((p) => plainReport(p, at))));
    },
    scheduledOnly() {
      return watcher?.unwatched() ?? [];
    },
    idle() {
      return serial(async () => undefined);
    },
    jobsStarted: () => started,
    busy: () => waiting > 0,
    async close() {
      for (const t of timers) clearInterval(t);
      timers = [];
      await serial(async () => undefined);
      await watcher?.close();
      watcher = null;
      capture?.close();
      capture = null;
    },
    get policy() {
      return policy;
    },
  });
  return monitor as Monitor;
}
