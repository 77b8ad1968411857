import type { Logger } from 'pino';
import { displayPath, type FileState, type PolicyRule } from '../core/model.js';
import type { PathRules } from '../core/policy-match.js';
import { classifyChange, deltaKind } from './change-kind.js';
import { vanishedState } from './file-state.js';
import { resultState } from './hashing/hash-results.js';
import type { HashPool } from './scan/hash-pool.js';
import type { Change, LocalStore } from './store/local-store.js';
import { closeEventFd } from './watch/fanotify.js';
import { addReports, leftUnrecorded, SEEN, type PathReport } from './watch/path-report.js';
import type { TreeWatcher } from './watch/tree-watcher.js';
import type { HeldWrite, WriteCapture } from './watch/write-capture.js';
import { xattrWants } from './xattrs.js';

/** Paths whose last read time a check remembers (see readMarks). */
const READ_MARKS = 20_000;
/** Paths a real-time check reads at once. */
const CHECK_CONCURRENCY = 32;

export interface RealtimeCheckDeps {
  readonly store: LocalStore;
  /** Reads every path's state (agent/hashing/hash-file.ts, in the hash pool's threads). */
  readonly pool: HashPool;
  readonly logger: Logger;
  readonly clock: () => Date;
  /** The policy's rules now. */
  rules(): PathRules;
  /** The watcher and the write capture now (null: none). */
  watcher(): Pick<TreeWatcher, 'sync'> | null;
  capture(): Pick<WriteCapture, 'sync' | 'take'> | null;
  /** Records these changes (baseline and queue) and empties the array. */
  flush(changes: Change[]): void;
  /** Scans a directory that just appeared (scan-tree.ts, source realtime), adding to changes. */
  scanDirectory(path: Buffer, changes: Change[]): Promise<void>;
}

/**
 * The real-time check of the paths the watcher reported: each path's state read now under its
 * rule, compared with the baseline and recorded (deltaKind), with the short-lived files' rules of
 * docs/delivery.md for a path gone before its check. Runs on the monitor's serial queue.
 */
export interface RealtimeCheck {
  check(reports: readonly PathReport[]): Promise<void>;
}

export function createRealtimeCheck(deps: RealtimeCheckDeps): RealtimeCheck {
  const { store, pool, logger, clock } = deps;
  // When a check last read each recently checked path (monotonic): a kernel event read before
  // then is accounted for by what that read found. Insertion order is age order; the oldest go first.
  const readMarks = new Map<string, number>();
  const marks = () => performance.now();

  /** The paths' states now, each under its rule (extended attributes when it checks xattrs, acl, selinux). */
  async function readUnderRules(work: readonly { path: Buffer; rule: PolicyRule }[]): Promise<(FileState | null)[]> {
    const results = await pool.read(
      work.map((w) => w.path),
      work.map((w) => w.rule.hashAlgorithm),
      work.map((w) => w.rule.maxHashBytes ?? 0),
      work.map((w) => xattrWants(w.rule.attributes)),
    );
    return results.map((r, k) => resultState(r, work[k]!.rule.hashAlgorithm));
  }

  /**
   * What is known of a path that was gone when checked although the kernel saw it appear or be
   * written (docs/delivery.md, "Short-lived files"): its state read through the held descriptor of
   * its last write, else a state marked vanished; then its deletion.
   */
  async function recordVanished(report: PathReport, before: FileState | null, rule: PolicyRule, held: HeldWrite | null, changes: Change[]) {
    const unread = vanishedState(report.seen & SEEN.DIRECTORY ? 'directory' : 'unknown');
    const state = held
      ? await pool
          .readDescriptor(held.fd, rule.hashAlgorithm, rule.maxHashBytes ?? 0)
          .then((r) => resultState(r, rule.hashAlgorithm) ?? unread)
          .catch(() => unread)
      : unread;
    logger.debug({ path: displayPath(report.path), captured: state !== unread, baselined: !!before }, 'recorded a path that vanished before its check');
    // When the agent saw the write it read, else the first event of the path; the deletion when
    // its event was read (not before the write), else now.
    const seenAt = held ? held.seenAt : report.firstAt;
    const removedAt = report.seen & SEEN.REMOVED ? report.lastAt : clock();
    if (!before || classifyChange(before, state, rule.attributes)) changes.push({ path: report.path, kind: before ? 'modified' : 'created', state, source: 'realtime', detectedAt: seenAt });
    changes.push({ path: report.path, kind: 'deleted', state: null, source: 'realtime', detectedAt: removedAt > seenAt ? removedAt : seenAt });
  }

  async function check(reports: readonly PathReport[]) {
    const changes: Change[] = [];
    const unique = new Map<string, PathReport>();
    addReports(unique, reports);
    const rules = deps.rules();
    const work = [...unique.values()].flatMap((report) => {
      const rule = rules.match(report.path)?.rule;
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
      deps.watcher()?.sync();
      deps.capture()?.sync();
      const chunkMark = marks();
      const reads = await readUnderRules(chunk);
      for (const [k, { report, path, rule }] of chunk.entries()) {
        const again = underScanned(path);
        let readMark = again ? marks() : chunkMark;
        const after = again ? (await readUnderRules([{ path, rule }]))[0]! : reads[k]!;
        const before = store.baseline.get(path);
        const pathKey = path.toString('latin1');
        const unrecorded = !after && leftUnrecorded(report, readMarks.get(pathKey)) && before?.type !== 'directory';
        if (!after) {
          // Gone: every event from before the read is in the kernel's queues by now. Read them,
          // so that what this check records for the path (its deletion, or the vanished file with
          // the content of its last write) accounts for all of them: a later check does not
          // record them again (what came after the read, if anything, is coalesced into it).
          deps.watcher()?.sync();
          deps.capture()?.sync();
          readMark = marks();
        }
        // Whatever the kernel reported before readMark is accounted for by what this read finds.
        readMarks.delete(pathKey);
        readMarks.set(pathKey, readMark);
        if (readMarks.size > READ_MARKS) readMarks.delete(readMarks.keys().next().value!);
        if (unrecorded) {
          const held = deps.capture()?.take(path) ?? null;
          try {
            await recordVanished(report, before ?? null, rule, held, changes);
          } finally {
            if (held) closeEventFd(held.fd);
          }
          continue;
        }
        // What this read reflects: writes seen before it. A later one's descriptor stays held for
        // the path's next check (none comes for a path that is gone).
        const held = deps.capture()?.take(path, after ? readMark : undefined);
        if (held) closeEventFd(held.fd);
        // A change, or (not one under the rule: a log that grew) the baseline follows the disk.
        const kind = deltaKind(before ?? null, after, rule.attributes);
        if (kind) changes.push({ path, kind, state: after, source: 'realtime', detectedAt: clock() });
        if (!after && before?.type === 'directory') {
          for (const child of store.baseline.under(path)) {
            if (!child.path.equals(path) && !unique.has(child.path.toString('latin1'))) {
              changes.push({ path: child.path, kind: 'deleted', state: null, source: 'realtime', detectedAt: clock() });
            }
          }
        }
        if (after?.type === 'directory' && before?.type !== 'directory') {
          // A new directory: files may have landed in it before the watch on it existed.
          deps.flush(changes);
          await deps.scanDirectory(path, changes);
          // Recorded now, so that later paths of this batch compare against the new baseline.
          deps.flush(changes);
          scanned.push(path.toString('latin1'));
        }
      }
      deps.flush(changes);
    }
    deps.flush(changes);
  }

  return { check };
}
