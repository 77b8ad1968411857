import { closeSync } from 'node:fs';
import { getSystemErrorName } from 'node:util';
import { loadNativeAddon } from '../native/addon.js';

/** fanotify(7) event bits this agent reads (linux/fanotify.h). */
export const FAN = {
  CLOSE_WRITE: 0x8,
  Q_OVERFLOW: 0x4000,
} as const;

/** One event: a descriptor of the written file, opened by the kernel, that the receiver must close. */
export interface FanotifyEvent {
  /** -1 for events without one (FAN_Q_OVERFLOW). */
  readonly fd: number;
  readonly pid: number;
  readonly mask: number;
  /** The file's path when the event was read (/proc/self/fd); null when it could not be read. */
  readonly path: Buffer | null;
  /** The kernel had unlinked it when the event was read (its path ended in " (deleted)"). */
  readonly unlinked: boolean;
}

export interface Fanotify {
  /** Marks (or unmarks) a directory: FAN_CLOSE_WRITE of its entries. Returns null, or the errno's name. */
  mark(dir: Buffer, add: boolean): string | null;
  /** The events waiting now, read synchronously. */
  read(): FanotifyEvent[];
  close(): void;
}

const DELETED = Buffer.from(' (deleted)');

/** Splits the addon's records (agent/native/fanotify.c: fd, pid, mask, path length, path). */
export function parseFanotifyRecords(chunk: Buffer): FanotifyEvent[] {
  const out: FanotifyEvent[] = [];
  let o = 0;
  while (o + 16 <= chunk.length) {
    const fd = chunk.readInt32LE(o);
    const pid = chunk.readInt32LE(o + 4);
    const mask = chunk.readUInt32LE(o + 8);
    const len = chunk.readUInt32LE(o + 12);
    let path: Buffer | null = len ? chunk.subarray(o + 16, o + 16 + len) : null;
    const unlinked = !!path && path.length > DELETED.length && path.subarray(path.length - DELETED.length).equals(DELETED);
    if (path && unlinked) path = path.subarray(0, path.length - DELETED.length);
    out.push({ fd, pid, mask, path, unlinked });
    o += 16 + ((len + 3) & ~3);
  }
  return out;
}

/**
 * A fanotify group for write capture, or why there is none: it needs the native addon and
 * CAP_SYS_ADMIN (the agent runs as root; elsewhere real-time checks read paths without it).
 * Nothing polls it: read() takes the events waiting in the kernel (which holds them, and the
 * files, meanwhile).
 */
export function openFanotify(onError: (err: Error) => void): Fanotify | { unavailable: string } {
  const addon = loadNativeAddon();
  if (!addon) return { unavailable: 'the native addon is not built' };
  const opened = addon.fanotifyOpen();
  if (typeof opened === 'number') {
    const code = getSystemErrorName(opened);
    return { unavailable: code === 'EPERM' ? 'fanotify needs CAP_SYS_ADMIN (root)' : `fanotify_init: ${code}` };
  }
  const handle: object = opened;
  let closed = false;
  return {
    mark(dir, add) {
      if (closed) return 'closed';
      const rc = addon.fanotifyMark(handle, dir, add);
      return rc < 0 ? getSystemErrorName(rc) : null;
    },
    read() {
      if (closed) return [];
      const got = addon.fanotifyRead(handle);
      if (typeof got === 'number') {
        onError(new Error(`reading fanotify events failed: ${getSystemErrorName(got)}`));
        return [];
      }
      return got ? parseFanotifyRecords(got) : [];
    },
    close() {
      if (closed) return;
      closed = true;
      addon.fanotifyClose(handle);
    },
  };
}

/** Closes an event's descriptor (the kernel opened it for this process). */
export function closeEventFd(fd: number): void {
  if (fd < 0) return;
  try {
    closeSync(fd);
  } catch {
    // already closed: nothing held
  }
}
