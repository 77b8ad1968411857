import { AGENT_DEFAULTS } from '../config.js';
import { realpathSync } from 'node:fs';
import type { Logger } from 'pino';
import { displayPath } from '../../core/model.js';
import { closeEventFd, FAN, openFanotify, type Fanotify, type FanotifyEvent } from './fanotify.js';

/** A written file, held open by the kernel's descriptor from its last close-write. */
export interface HeldWrite {
  /** Readable even when the path is gone: the caller reads it (or not) and must close it. */
  readonly fd: number;
  /** The process that wrote it. */
  readonly pid: number;
  readonly seenAt: Date;
  /** Monotonic time the event was read (performance.now(), as PathReport.arrivedMark). */
  readonly mark: number;
}

/**
 * Write capture (docs/delivery.md, "Short-lived files"): every directory the watcher watches is
 * also marked with fanotify for FAN_CLOSE_WRITE; each written file's descriptor is held, by path,
 * until the real-time check of that path takes it. A file deleted before its check is then read
 * through the descriptor, content and all. Without fanotify (not root, no addon) the capture is
 * off and says why; nothing else changes.
 */
export interface WriteCapture {
  /** Null while capturing; else why not. */
  readonly unavailable: string | null;
  /** Marks a watched directory (the watcher's own path for it). */
  watch(dir: Buffer): void;
  unwatch(dir: Buffer): void;
  /** Reads what the kernel has queued now, so a check that follows sees every earlier write. */
  sync(): void;
  /**
   * The held descriptor of the path's last write, if any; it is the caller's to close. With
   * `readBefore` (a check's monotonic time before it read the path), only a write seen before it:
   * a later one stays for the path's next check.
   */
  take(path: Buffer, readBefore?: number): HeldWrite | null;
  /** Descriptors held now. */
  held(): number;
  close(): void;
}

export interface WriteCaptureOptions {
  /** The watcher's roots: paths are reported under them even when a root's real path differs. */
  readonly roots: readonly Buffer[];
  readonly logger: Logger;
  readonly clock?: () => Date;
  readonly marks?: () => number;
  /** A descriptor no check took within this time is closed (default 10 s). */
  readonly holdMs?: number;
  /** Descriptors held at most; past it the oldest is closed (default 4096). */
  readonly maxHeld?: number;
}

const key = (p: Buffer) => p.toString('latin1');
const DRAIN_MS = 1000;
/** MAX_RECORDS in agent/native/fanotify.c. */
const READ_RECORDS = 1024;

export function createWriteCapture(opts: WriteCaptureOptions): WriteCapture {
  const log = opts.logger.child({ component: 'write-capture' });
  const clock = opts.clock ?? (() => new Date());
  const marks = opts.marks ?? (() => performance.now());
  const holdMs = opts.holdMs ?? AGENT_DEFAULTS.capture.holdMs;
  const maxHeld = opts.maxHeld ?? AGENT_DEFAULTS.capture.maxHeld;
  // Insertion order is age order: a newer write of a path replaces (and re-inserts) the older.
  const heldByPath = new Map<string, HeldWrite>();
  let overflows = 0;
  let markFailures = 0;

  // The kernel names files by their real path; the watcher by the root as the policy gave it.
  const aliases: { real: string; given: string }[] = [];
  for (const root of opts.roots) {
    try {
      const real = realpathSync(root, { encoding: 'buffer' });
      if (!real.equals(root)) aliases.push({ real: key(real), given: key(root) });
    } catch {
      // a root that does not exist yet: not watched either
    }
  }
  const asWatched = (path: Buffer): string => {
    const k = key(path);
    for (const { real, given } of aliases) if (k === real || k.startsWith(real.endsWith('/') ? real : `${real}/`)) return given + k.slice(real.length);
    return k;
  };

  const drop = (k: string) => {
    const h = heldByPath.get(k);
    if (!h) return;
    heldByPath.delete(k);
    closeEventFd(h.fd);
  };
  const expire = (now: number) => {
    for (const [k, h] of heldByPath) {
      if (now - h.seenAt.getTime() < holdMs && heldByPath.size <= maxHeld) break;
      drop(k);
    }
  };
  const accept = (events: FanotifyEvent[]) => {
    const now = clock();
    const mark = marks();
    for (const ev of events) {
      if (ev.mask & FAN.Q_OVERFLOW) {
        overflows++;
        log.warn({ overflows }, 'fanotify queue overflowed: files deleted before their check may be recorded without their content');
        continue;
      }
      if (ev.fd < 0) continue;
      if (!ev.path) {
        closeEventFd(ev.fd);
        continue;
      }
      const k = asWatched(ev.path);
      drop(k);
      heldByPath.set(k, { fd: ev.fd, pid: ev.pid, seenAt: now, mark });
    }
    expire(now.getTime());
  };

  const opened = openFanotify((err) => log.error({ err: err.message }, 'fanotify failed'));
  if ('unavailable' in opened) {
    log.info({ reason: opened.unavailable }, 'write capture off: a file deleted before its check is recorded without its content');
    return {
      unavailable: opened.unavailable,
      watch: () => undefined,
      unwatch: () => undefined,
      sync: () => undefined,
      take: () => null,
      held: () => 0,
      close: () => undefined,
    };
  }
  const fan: Fanotify = opened;
  let closed = false;
  // Checks read the kernel's queue before they read paths; this bounds it (and the descriptors
  // held for paths no check looks at, such as excluded ones) when no check runs.
  const drainer = setInterval(() => capture.sync(), DRAIN_MS);
  drainer.unref();
  const capture: WriteCapture = {
    unavailable: null,
    watch(dir) {
      const err = fan.mark(dir, true);
      if (err && err !== 'ENOENT' && err !== 'ENOTDIR' && markFailures++ === 0) {
        log.warn({ dir: displayPath(dir), reason: err }, 'cannot capture writes in a directory (and maybe others): files deleted there before their check are recorded without their content');
      }
    },
    unwatch(dir) {
      fan.mark(dir, false);
    },
    sync() {
      // A read returns at most READ_RECORDS records (each an open descriptor); duplicates are
      // closed before the next, so the descriptors open at once stay bounded.
      for (let more = true; more && !closed; ) {
        const events = fan.read();
        accept(events);
        more = events.length >= READ_RECORDS;
      }
    },
    take(path, readBefore) {
      const k = key(path);
      const h = heldByPath.get(k);
      if (!h || (readBefore !== undefined && h.mark >= readBefore)) return null;
      heldByPath.delete(k);
      return h;
    },
    held: () => heldByPath.size,
    close() {
      if (closed) return;
      closed = true;
      clearInterval(drainer);
      fan.close();
      for (const k of [...heldByPath.keys()]) drop(k);
    },
  };
  return capture;
}
