import { constants } from 'node:os';
import { loadNativeAddon } from '../native/addon.js';

/** inotify(7) event bits (linux/inotify.h). */
export const IN = {
  MODIFY: 0x2,
  ATTRIB: 0x4,
  CLOSE_WRITE: 0x8,
  MOVED_FROM: 0x40,
  MOVED_TO: 0x80,
  CREATE: 0x100,
  DELETE: 0x200,
  DELETE_SELF: 0x400,
  MOVE_SELF: 0x800,
  UNMOUNT: 0x2000,
  Q_OVERFLOW: 0x4000,
  IGNORED: 0x8000,
  ONLYDIR: 0x0100_0000,
  DONT_FOLLOW: 0x0200_0000,
  EXCL_UNLINK: 0x0400_0000,
  ISDIR: 0x4000_0000,
} as const;

export interface InotifyEvent {
  /** The watch it came from; -1 for IN_Q_OVERFLOW. */
  readonly wd: number;
  readonly mask: number;
  readonly cookie: number;
  /** The entry's name in the watched directory, as bytes; null for events on the directory itself. */
  readonly name: Buffer | null;
}

/** A watch the kernel refused (ENOSPC: the max_user_watches limit; EACCES; ENOENT...). */
export class WatchError extends Error {
  override readonly name = 'WatchError';
  constructor(
    readonly code: string,
    readonly path: Buffer,
  ) {
    super(`cannot watch ${path.toString()}: ${code}`);
  }
}

export interface Inotify {
  /** Adds (or updates) a watch; returns its descriptor. Throws WatchError. */
  add(path: Buffer, mask: number): number;
  remove(wd: number): void;
  /** Reads the events waiting now, synchronously, and hands them to onEvents before returning. */
  readNow(): void;
  close(): void;
}

const ERRNO_NAMES = new Map(Object.entries(constants.errno).map(([name, n]) => [n, name]));
const errnoName = (n: number) => ERRNO_NAMES.get(n) ?? `errno ${n}`;

/** Splits the kernel's bytes into events (struct inotify_event: wd, mask, cookie, len, name[len]). */
export function parseEvents(chunk: Buffer): InotifyEvent[] {
  const out: InotifyEvent[] = [];
  let o = 0;
  while (o + 16 <= chunk.length) {
    const wd = chunk.readInt32LE(o);
    const mask = chunk.readUInt32LE(o + 4);
    const cookie = chunk.readUInt32LE(o + 8);
    const len = chunk.readUInt32LE(o + 12);
    let name: Buffer | null = null;
    if (len > 0) {
      const raw = chunk.subarray(o + 16, o + 16 + len);
      const nul = raw.indexOf(0);
      name = Buffer.from(nul >= 0 ? raw.subarray(0, nul) : raw);
    }
    out.push({ wd, mask, cookie, name });
    o += 16 + len;
  }
  return out;
}

/**
 * An inotify instance through the native addon: every event the kernel gives, IN_Q_OVERFLOW
 * included, reaches onEvents. Null where the addon is not built.
 */
export function openInotify(onEvents: (events: InotifyEvent[]) => void, onError: (err: Error) => void): Inotify | null {
  const addon = loadNativeAddon();
  if (!addon) return null;
  const handle = addon.inotifyOpen((chunk, errno) => {
    if (chunk) onEvents(parseEvents(chunk));
    else onError(new Error(`reading inotify events failed: ${errnoName(errno)}`));
  });
  if (typeof handle === 'number') throw new WatchError(errnoName(-handle), Buffer.from('inotify_init1'));
  let closed = false;
  return {
    add(path, mask) {
      const wd = addon.inotifyAdd(handle, path, mask);
      if (wd < 0) throw new WatchError(errnoName(-wd), path);
      return wd;
    },
    remove(wd) {
      if (!closed) addon.inotifyRemove(handle, wd);
    },
    readNow() {
      if (closed) return;
      const got = addon.inotifyRead(handle);
      if (typeof got === 'number') onError(new Error(`reading inotify events failed: ${errnoName(-got)}`));
      else if (got) onEvents(parseEvents(got));
    },
    close() {
      if (closed) return;
      closed = true;
      addon.inotifyClose(handle);
    },
  };
}
