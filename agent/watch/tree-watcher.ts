import { AGENT_DEFAULTS } from '../config.js';
import { lstat, readdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import { displayPath } from '../../core/model.js';
import { IN, openInotify, WatchError, type Inotify, type InotifyEvent } from './inotify.js';
import { SEEN, type PathReport } from './path-report.js';
import type { WriteCapture } from './write-capture.js';

/** The watcher may have missed changes under `root`: the caller re-scans it and records a gap. */
export interface WatchGap {
  readonly root: Buffer;
  /** overflow: the kernel's event queue overflowed; watch_failed: a directory could not be watched. */
  readonly reason: 'overflow' | 'watch_failed';
  readonly detail: string;
  /**
   * The subtrees to re-scan, when not root itself: the directories a tree's walk could not watch
   * (each with what is below it; none is below another).
   */
  readonly dirs?: readonly Buffer[];
}

export interface TreeWatcherOptions {
  readonly roots: readonly Buffer[];
  /** The paths that changed in one coalescing window, each once (exact bytes), with what the kernel said of each. */
  readonly onPaths: (reports: PathReport[]) => void;
  readonly onGap: (gap: WatchGap) => void;
  readonly logger: Logger;
  /** Events on a path within this window are reported once, after it (default 50 ms). */
  readonly coalesceMs?: number;
  /** Called when a window opens (the first event after a quiet spell): its onPaths comes coalesceMs later. */
  readonly onWindow?: () => void;
  /** Directories watched at most (default: as many as the kernel allows, fs.inotify.max_user_watches). */
  readonly maxWatches?: number | null;
  /** Marks every watched directory for write capture too (agent/watch/write-capture.ts). */
  readonly capture?: Pick<WriteCapture, 'watch' | 'unwatch'>;
  readonly clock?: () => Date;
  /** Monotonic time for PathReport.arrivedMark (default performance.now). */
  readonly marks?: () => number;
}

/** Real-time watching of whole trees, with every loss reported (docs/delivery.md). */
export interface TreeWatcher {
  /** Directories (and roots) that are not watched, as "path (why)": only scheduled scans cover them. */
  unwatched(): string[];
  watchCount(): number;
  /**
   * Reads the kernel's waiting events now: their reports carry marks from before whatever the
   * caller does next (a check's reads), and are reported after the window as usual.
   */
  sync(): void;
  close(): Promise<void>;
}

const DIR_MASK =
  IN.MODIFY | IN.ATTRIB | IN.CLOSE_WRITE | IN.MOVED_FROM | IN.MOVED_TO | IN.CREATE | IN.DELETE | IN.DELETE_SELF | IN.MOVE_SELF | IN.DONT_FOLLOW | IN.EXCL_UNLINK | IN.ONLYDIR;
const SLASH = Buffer.from('/');
const join = (dir: Buffer, name: Buffer) => (dir.length === 1 && dir[0] === 0x2f ? Buffer.concat([SLASH, name]) : Buffer.concat([dir, SLASH, name]));
const parentOf = (p: Buffer) => {
  const i = p.lastIndexOf(0x2f);
  return i <= 0 ? SLASH : p.subarray(0, i);
};
const key = (p: Buffer) => p.toString('latin1');
const isUnder = (p: string, dir: string) => p === dir || p.startsWith(dir.endsWith('/') ? dir : `${dir}/`);

/**
 * Watches every directory below each root with inotify (agent/native/inotify.c). New directories
 * are watched as they appear, moved-away ones dropped. A queue overflow or a directory that cannot
 * be watched is reported as a gap; nothing is lost silently. A root that is a file is watched
 * through its directory; a root that does not exist is left to scheduled scans.
 */
export async function watchTrees(opts: TreeWatcherOptions): Promise<TreeWatcher> {
  const log = opts.logger.child({ component: 'watcher' });
  const coalesceMs = opts.coalesceMs ?? AGENT_DEFAULTS.watch.coalesceMs;
  const byWd = new Map<number, Buffer>();
  const byDir = new Map<string, number>();
  /** Directories watched only for the file roots in them: name keys reported. */
  const fileRootsIn = new Map<string, Set<string>>();
  const unwatched = new Map<string, string>();
  const clock = opts.clock ?? (() => new Date());
  const marks = opts.marks ?? (() => performance.now());
  /** A path's report being gathered; movedCookie: it left by IN_MOVED_FROM with this cookie. */
  type Gathering = { path: Buffer; seen: number; firstAt: Date; lastAt: Date; arrivedMark: number; movedCookie: number | null; deferred?: boolean };
  let pending = new Map<string, Gathering>();
  // Cookies of IN_MOVED_TO events read in this window and the one before: a rename's two events
  // normally come in one read, but may straddle a window's end.
  let landed = new Set<number>();
  let landedBefore = new Set<number>();
  const hasLanded = (cookie: number) => landed.has(cookie) || landedBefore.has(cookie);
  let timer: NodeJS.Timeout | null = null;
  let closed = false;

  const flush = () => {
    timer = null;
    if (!pending.size || closed) return;
    const reports: PathReport[] = [];
    const next = new Map<string, Gathering>();
    for (const [k, g] of pending) {
      // A rename's IN_MOVED_TO comes after its IN_MOVED_FROM: when the window ended between the
      // two, the path waits one window more to learn whether its content landed under a watched name.
      if (g.movedCookie !== null && !g.deferred && !hasLanded(g.movedCookie)) {
        g.deferred = true;
        next.set(k, g);
        continue;
      }
      let seen = g.seen;
      if (g.movedCookie !== null) seen |= hasLanded(g.movedCookie) ? SEEN.RENAMED_AWAY : SEEN.REMOVED;
      reports.push({ path: g.path, seen, firstAt: g.firstAt, lastAt: g.lastAt, arrivedMark: g.arrivedMark });
    }
    pending = next;
    landedBefore = landed;
    landed = new Set();
    if (pending.size) timer ??= setTimeout(flush, coalesceMs);
    if (reports.length) opts.onPaths(reports);
  };
  const report = (p: Buffer, seen: number, at: Date, mark: number, movedCookie: number | null = null) => {
    const k = key(p);
    const arrivedMark = seen & (SEEN.CREATED | SEEN.WRITTEN) ? mark : 0;
    const g = pending.get(k);
    if (g) {
      g.seen |= seen;
      g.lastAt = at;
      g.arrivedMark = Math.max(g.arrivedMark, arrivedMark);
      if (movedCookie !== null) g.movedCookie = movedCookie;
    } else {
      pending.set(k, { path: p, seen, firstAt: at, lastAt: at, arrivedMark, movedCookie });
    }
    if (timer) return;
    timer = setTimeout(flush, coalesceMs);
    opts.onWindow?.();
  };
  const seenOf = (mask: number) =>
    (mask & (IN.CREATE | IN.MOVED_TO) ? SEEN.CREATED : 0) |
    (mask & (IN.MODIFY | IN.CLOSE_WRITE) ? SEEN.WRITTEN : 0) |
    (mask & (IN.DELETE | IN.DELETE_SELF) ? SEEN.REMOVED : 0) |
    (mask & IN.ATTRIB ? SEEN.ATTRIB : 0) |
    (mask & IN.ISDIR ? SEEN.DIRECTORY : 0);

  const onEvents = (events: InotifyEvent[]) => {
    let overflow = false;
    const now = clock();
    const mark = marks();
    for (const ev of events) {
      if (ev.mask & IN.Q_OVERFLOW) {
        overflow = true;
        continue;
      }
      const dir = byWd.get(ev.wd);
      if (!dir) continue;
      if (ev.mask & IN.IGNORED) {
        byWd.delete(ev.wd);
        if (byDir.get(key(dir)) === ev.wd) byDir.delete(key(dir));
        continue;
      }
      const only = fileRootsIn.get(key(dir));
      if (only && !(ev.name && only.has(key(ev.name))) && !isTreeDir(dir)) continue;
      const path = ev.name ? join(dir, ev.name) : dir;
      if (ev.mask & IN.ISDIR && ev.mask & (IN.CREATE | IN.MOVED_TO) && isTreeDir(dir)) void addTree(path, rootOf(path));
      if (ev.mask & IN.ISDIR && ev.mask & IN.MOVED_FROM) dropTree(path);
      if (ev.mask & IN.MOVED_TO) landed.add(ev.cookie);
      report(path, seenOf(ev.mask) | (ev.name ? 0 : SEEN.DIRECTORY), now, mark, ev.mask & IN.MOVED_FROM ? ev.cookie : null);
      // An entry made, removed or renamed moves its directory's mtime and ctime, which inotify
      // does not report on the directory itself.
      if (ev.name && ev.mask & (IN.CREATE | IN.DELETE | IN.MOVED_FROM | IN.MOVED_TO) && !only) report(dir, SEEN.DIRECTORY, now, mark);
    }
    if (overflow) void onOverflow();
  };

  const inotify: Inotify | null = openInotify(onEvents, (err) => {
    log.error({ err: err.message }, 'inotify failed; re-scanning every root');
    void onOverflow(err.message);
  });

  // Roots that are directories: every directory below them is watched.
  const treeRoots: Buffer[] = [];
  const isTreeDir = (dir: Buffer) => treeRoots.some((r) => isUnder(key(dir), key(r)));
  const rootOf = (p: Buffer) => treeRoots.find((r) => isUnder(key(p), key(r))) ?? p;

  /**
   * Watches one directory. A refusal is recorded as unwatched and reported: into `refused` when
   * the caller collects a tree's refusals into one gap, else as a gap of its own.
   */
  const watchDir = (dir: Buffer, root: Buffer, refused?: { dir: Buffer; detail: string }[]): boolean => {
    if (!inotify || closed) return false;
    try {
      if (opts.maxWatches != null && byWd.size >= opts.maxWatches && !byDir.has(key(dir))) throw new WatchError('ENOSPC', dir);
      const wd = inotify.add(dir, DIR_MASK);
      byWd.set(wd, dir);
      byDir.set(key(dir), wd);
      // Directories watched only for file roots in them take no capture (their other files' writes
      // would be held for nothing).
      if (isTreeDir(dir)) opts.capture?.watch(dir);
      unwatched.delete(displayPath(dir));
      return true;
    } catch (err) {
      if (!(err instanceof WatchError)) throw err;
      // A directory that vanished before its watch is no gap: its deletion is reported anyway.
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return false;
      const detail = err.code === 'ENOSPC' ? 'watch limit reached (fs.inotify.max_user_watches)' : err.code;
      if (!unwatched.has(displayPath(dir))) {
        unwatched.set(displayPath(dir), detail);
        if (refused) refused.push({ dir, detail });
        else {
          log.warn({ dir: displayPath(dir), root: displayPath(root), reason: detail }, 'cannot watch a directory; scheduled scans cover it, re-scanning it now');
          opts.onGap({ root: dir, reason: 'watch_failed', detail });
        }
      }
      return false;
    }
  };

  /**
   * Watches dir and every directory below it (a watch first, then the listing: nothing slips
   * between). Directories it cannot watch (the watch limit reached, say) are left with what is
   * below them to the scheduled scans, and reported together as one gap: past a limit, a large
   * tree would otherwise make thousands of gap records and re-scans.
   */
  async function addTree(top: Buffer, root: Buffer): Promise<void> {
    const stack = [top];
    const refused: { dir: Buffer; detail: string }[] = [];
    while (stack.length && !closed) {
      const dir = stack.pop()!;
      if (!watchDir(dir, root, refused)) continue;
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true, encoding: 'buffer' });
      } catch {
        continue; // gone, or unreadable: its own events (or the scans) cover it
      }
      for (const e of entries) if (e.isDirectory()) stack.push(join(dir, e.name));
    }
    if (!refused.length) return;
    const reasons = [...new Set(refused.map((r) => r.detail))].join('; ');
    const first = displayPath(refused[0]!.dir);
    const detail = refused.length === 1 ? reasons : `${refused.length} directories not watched (${reasons}), ${first} the first`;
    log.warn({ tree: displayPath(top), root: displayPath(root), directories: refused.length, first, reason: reasons }, 'cannot watch directories; scheduled scans cover them, re-scanning them now');
    opts.onGap({ root: refused.length === 1 ? refused[0]!.dir : top, reason: 'watch_failed', detail, dirs: refused.map((r) => r.dir) });
  }

  function dropTree(top: Buffer) {
    const k = key(top);
    for (const [dir, wd] of byDir) {
      if (!isUnder(dir, k)) continue;
      byDir.delete(dir);
      byWd.delete(wd);
      inotify?.remove(wd);
      opts.capture?.unwatch(Buffer.from(dir, 'latin1'));
    }
  }

  async function onOverflow(detail = 'the kernel event queue overflowed (fs.inotify.max_queued_events)') {
    log.warn({ reason: detail }, 'the watcher lost events; re-scanning');
    // Directories made while events were lost have no watch yet: watch them before the re-scan.
    for (const r of treeRoots) await addTree(r, r);
    for (const r of [...treeRoots, ...fileRoots]) opts.onGap({ root: r, reason: 'overflow', detail });
  }

  const fileRoots: Buffer[] = [];
  if (!inotify) {
    for (const r of opts.roots) unwatched.set(displayPath(r), 'the native addon is not built');
  } else {
    for (const root of opts.roots) {
      let st;
      try {
        st = await lstat(root);
      } catch {
        unwatched.set(displayPath(root), 'does not exist');
        continue;
      }
      if (st.isDirectory()) {
        treeRoots.push(root);
        await addTree(root, root);
      } else {
        const dir = parentOf(root);
        fileRoots.push(root);
        const names = fileRootsIn.get(key(dir)) ?? new Set<string>();
        names.add(key(root.subarray(dir.length === 1 ? 1 : dir.length + 1)));
        fileRootsIn.set(key(dir), names);
        if (!byDir.has(key(dir))) watchDir(dir, root);
      }
    }
  }
  log.info({ watches: byWd.size, unwatched: unwatched.size }, 'watching');

  return {
    unwatched: () => [...unwatched].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([p, why]) => `${p} (${why})`),
    watchCount: () => byWd.size,
    sync() {
      if (!closed) inotify?.readNow();
    },
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      inotify?.close();
    },
  };
}
