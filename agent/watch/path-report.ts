/**
 * What the kernel said about one path over a coalescing window (or several, while the path waited
 * for its check): which kinds of events, and when the first and last were read. The check reads
 * the path's state; the report tells it what happened when that state is gone (docs/delivery.md,
 * "Short-lived files").
 */
export interface PathReport {
  readonly path: Buffer;
  /** SEEN bits. */
  readonly seen: number;
  /** When the first event of the path was read from the kernel. */
  readonly firstAt: Date;
  /** When the last was; for a path that went away, when its removal was read. */
  readonly lastAt: Date;
  /**
   * Monotonic time (performance.now()) the last CREATED or WRITTEN event was read; 0 when none
   * was. A check that read the path after it has seen what that event reported.
   */
  readonly arrivedMark: number;
}

export const SEEN = {
  /** IN_CREATE or IN_MOVED_TO: the name appeared. */
  CREATED: 1,
  /** IN_MODIFY or IN_CLOSE_WRITE: content written. */
  WRITTEN: 2,
  /** IN_DELETE, or IN_MOVED_FROM with no matching IN_MOVED_TO under a watched tree: gone from view. */
  REMOVED: 4,
  /** IN_MOVED_FROM whose IN_MOVED_TO the watcher saw: the content lives on under the new name. */
  RENAMED_AWAY: 8,
  /** IN_ATTRIB. */
  ATTRIB: 16,
  /** The events said the path is a directory (IN_ISDIR). */
  DIRECTORY: 32,
} as const;

/** A report of a path the agent was asked to check with nothing from the kernel (a directory's entries changed, a test). */
export function plainReport(path: Buffer, at: Date): PathReport {
  return { path, seen: 0, firstAt: at, lastAt: at, arrivedMark: 0 };
}

/** Adds reports to a map by path (latin1 key), merging each into the one the path has already. */
export function addReports(into: Map<string, PathReport>, reports: Iterable<PathReport>): void {
  for (const r of reports) {
    const k = r.path.toString('latin1');
    const prev = into.get(k);
    into.set(k, prev ? mergeReports(prev, r) : r);
  }
}

/** Two reports of one path, as one. */
export function mergeReports(a: PathReport, b: PathReport): PathReport {
  return {
    path: a.path,
    seen: a.seen | b.seen,
    firstAt: a.firstAt <= b.firstAt ? a.firstAt : b.firstAt,
    lastAt: a.lastAt >= b.lastAt ? a.lastAt : b.lastAt,
    arrivedMark: Math.max(a.arrivedMark, b.arrivedMark),
  };
}

/**
 * True when the kernel saw the path appear or be written, and not only leave by a rename the
 * watcher followed: if it is gone when checked, it existed with content nobody recorded yet.
 * `readMark`: when a check last read the path (monotonic, as arrivedMark); an arrival read before
 * that is in the baseline already.
 */
export function leftUnrecorded(r: PathReport, readMark = 0): boolean {
  const arrived = (r.seen & (SEEN.CREATED | SEEN.WRITTEN)) !== 0 && r.arrivedMark > readMark;
  const renamedOnly = (r.seen & SEEN.RENAMED_AWAY) !== 0 && (r.seen & SEEN.REMOVED) === 0;
  return arrived && !renamedOnly;
}
