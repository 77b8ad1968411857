import type { ScanSummary as CoreScanSummary } from '../core/scan-summary.js';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { ChangeSource, Policy } from '../core/model.js';
import { createPathRules, createRuleMatcher, type PathRules } from '../core/policy-match.js';
import { createRealtimeCheck } from './realtime-check.js';
import { createScanSchedule } from './scan-schedule.js';
import { createSerialWork } from './serial-work.js';
import type { Change, LocalStore } from './store/local-store.js';
import type { HashPool } from './scan/hash-pool.js';
import { withoutTrailingSlashes } from './store/path-key.js';
import { scanTree, type ScanCounts } from './scan/scan-tree.js';
import { addReports, plainReport, type PathReport } from './watch/path-report.js';
import { watchTrees, type TreeWatcher, type TreeWatcherOptions, type WatchGap } from './watch/tree-watcher.js';
import { createWriteCapture, type WriteCapture } from './watch/write-capture.js';

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
  /**
   * Runs `changes` on the one serial path that writes the baseline and records what it returns
   * (reconciliation's repairs); resolves with how many were recorded.
   */
  recordRepairs(changes: () => Change[]): Promise<number>;
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
  /** Bounds of the held descriptors (agent/config.ts: capture.holdMs, capture.maxHeld). */
  readonly capture?: { readonly holdMs: number; readonly maxHeld: number };
}

const RECORD_BATCH = 500;

export function createMonitor(deps: MonitorDeps): Monitor {
  const { store, logger, clock } = deps;
  const emitter = new EventEmitter();
  let policy: Policy | null = null;
  let pathRules: PathRules = createPathRules([]);
  let covers: (path: Buffer) => boolean = () => false;
  let roots: Buffer[] = [];
  let watcher: TreeWatcher | null = null;
  let capture: WriteCapture | null = null;
  // Paths reported by the watcher and not checked yet: one check takes all of them.
  let toCheck = new Map<string, PathReport>();
  let checkQueued = false;
  // Everything that touches the baseline runs one at a time, so sequence numbers follow the disk.
  const work = createSerialWork();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => work.run(fn);

  const flush = (changes: Change[]) => {
    if (!changes.length) return;
    const deltas = store.journal.record(changes.splice(0));
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

  const schedule = createScanSchedule((fullHash) => {
    void serial(() => scanAll('scan', fullHash)).catch((err: unknown) => logger.error({ err, fullHash }, 'scheduled scan failed'));
  });

  async function restartWatcher() {
    await watcher?.close();
    watcher = null;
    capture?.close();
    capture = deps.captureWrites === false ? null : createWriteCapture({ roots, logger, clock, ...deps.capture });
    watcher = await watchTrees({
      roots,
      logger,
      clock,
      maxWatches: policy?.limits.maxWatches ?? null,
      ...(capture ? { capture } : {}),
      ...deps.watch,
      // A hashing thread starts while the window gathers the paths its check will read.
      onWindow: () => deps.pool.warm(),
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
      await realtime.check(batch);
    }).catch((err: unknown) => logger.error({ err }, 'real-time check failed'));
  }

  /** The watcher may have missed changes under gap.root (or its dirs): re-scan now and record the gap. */
  async function closeGap(gap: WatchGap) {
    const counts: ScanCounts = { files: 0, bytes: 0, errors: 0, changes: 0 };
    const changes: Change[] = [];
    for (const dir of gap.dirs ?? [gap.root]) await scanRoot(dir, 'scan', false, changes, counts);
    flush(changes);
    store.meta.addGap({ at: clock(), root: gap.root.toString(), reason: gap.reason, detail: gap.detail, changesFound: counts.changes });
    logger.warn({ root: gap.root.toString(), reason: gap.reason, detail: gap.detail, changesFound: counts.changes }, 'watch gap closed by a re-scan');
    emitter.emit('status');
  }

  const realtime = createRealtimeCheck({
    store,
    pool: deps.pool,
    logger,
    clock,
    rules: () => pathRules,
    watcher: () => watcher,
    capture: () => capture,
    flush,
    scanDirectory: (path, changes) => scanRoot(path, 'realtime', false, changes, { files: 0, bytes: 0, errors: 0, changes: 0 }),
  });

  const monitor = Object.assign(emitter, {
    applyPolicy(p: Policy) {
      return serial(async () => {
        // What the previous policy covered: the one in force, or at start-up the one last stored.
        const previous = policy ?? store.meta.policy();
        const oldMatch = createRuleMatcher(previous?.rules ?? []);
        const oldCovers = (path: Buffer) => oldMatch(path) !== null;
        setPolicy(p);
        store.meta.setPolicy(p);
        // Paths the new policy no longer covers leave the baseline, and the controller's current
        // state, without a history row: refreshed with no state.
        const drop: Change[] = [];
        for (const { path } of store.baseline.under(Buffer.from('/'))) {
          if (!covers(path) && oldCovers(path)) drop.push({ path, kind: 'refreshed', state: null, source: 'scan', detectedAt: clock() });
        }
        for (let i = 0; i < drop.length; i += RECORD_BATCH) flush(drop.slice(i, i + RECORD_BATCH));
        // Watch first, then scan: a change the scan has already passed is reported by the watcher
        // (its check runs after the scan), so none falls between the two.
        await restartWatcher();
        const summary = await scanAll('scan', false, oldCovers);
        schedule.set(p);
        logger.info({ version: p.version, roots: roots.map((r) => r.toString()), dropped: drop.length }, 'policy applied');
        return summary;
      });
    },
    rescan(fullHash: boolean) {
      return serial(() => scanAll('rescan', fullHash));
    },
    recordRepairs(changes: () => Change[]) {
      return serial(async () => {
        const found = changes();
        const n = found.length;
        flush(found);
        return n;
      });
    },
    check(paths: readonly Buffer[]) {
      const at = clock();
      return serial(() => realtime.check(paths.map((p) => plainReport(p, at))));
    },
    scheduledOnly() {
      return watcher?.unwatched() ?? [];
    },
    idle() {
      return serial(async () => undefined);
    },
    jobsStarted: () => work.started(),
    busy: () => work.busy(),
    async close() {
      schedule.stop();
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
