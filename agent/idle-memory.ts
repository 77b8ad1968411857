import { constants } from 'node:os';
import type { Logger } from 'pino';
import type { NativeAddon } from './native/addon.js';

const ENOENT = constants.errno.ENOENT;

/** What one release handed back. */
export interface MemoryReleased {
  /** Address space of the mapped files advised away (not all of it was resident). */
  readonly mappedBytes: number;
  /** Whether malloc_trim ran (glibc only). */
  readonly heapTrimmed: boolean;
}

export interface IdleMemoryOptions {
  /**
   * A value that changes whenever the agent did work: scans and checks run, deltas recorded or
   * acked. Memory is released only after an interval in which it did not change.
   */
  readonly activity: () => string;
  /** True while work is running or waiting (a scan, a check): never released then. */
  readonly busy: () => boolean;
  /** Files whose shared mappings are released: the local store's LMDB data file. */
  readonly mappedFiles: readonly string[];
  /** The native addon's two functions; null (not built): nothing is released. */
  readonly addon: Pick<NativeAddon, 'releaseFileMappings' | 'trimMallocHeap'> | null;
  readonly logger: Logger;
  /**
   * How often it looks, in ms (default 3 s): memory goes back one to two intervals after the last
   * work. A look costs a few reads of counters; a release, well under a millisecond when little
   * was resident.
   */
  readonly intervalMs?: number;
}

export interface IdleMemory {
  /** One look, as the timer makes it: the release, or null when there was nothing to do. */
  tick(): MemoryReleased | null;
  start(): void;
  stop(): void;
}

/**
 * Hands memory back to the kernel once the agent goes quiet. A baseline scan or a large backlog
 * reads and writes most of the LMDB file, whose pages stay in the agent's resident set long after
 * (on /usr, about 55 MB of a 160 MB RSS); and the scan threads' malloc arenas keep what they
 * freed. After one interval with no work, the file's mappings are advised MADV_DONTNEED (the pages
 * stay in the page cache while the kernel keeps them) and malloc_trim returns free heap.
 * Then it does nothing until the agent works again.
 */
export function createIdleMemory(opts: IdleMemoryOptions): IdleMemory {
  const log = opts.logger.child({ component: 'idle-memory' });
  const intervalMs = opts.intervalMs ?? 3_000;
  let seen: string | null = null;
  // Work was done since the last release (and at start: the start-up check is work).
  let dirty = true;
  let timer: NodeJS.Timeout | null = null;

  const release = (): MemoryReleased => {
    let mappedBytes = 0;
    for (const file of opts.mappedFiles) {
      const r = opts.addon!.releaseFileMappings(Buffer.from(file));
      if (r === -ENOENT) log.warn({ file }, 'found no mapping of the file to release');
      else if (r < 0) log.warn({ file, errno: -r }, 'could not release the mapped pages of a file');
      else mappedBytes += r;
    }
    return { mappedBytes, heapTrimmed: opts.addon!.trimMallocHeap() };
  };

  return {
    tick() {
      if (!opts.addon) return null;
      const now = opts.activity();
      const quiet = now === seen && !opts.busy();
      seen = now;
      if (!quiet) {
        dirty = true;
        return null;
      }
      if (!dirty) return null;
      dirty = false;
      const released = release();
      log.debug(released, 'idle: memory handed back');
      return released;
    },
    start() {
      if (timer || !opts.addon) return;
      timer = setInterval(() => {
        try {
          this.tick();
        } catch (err) {
          log.error({ err }, 'idle memory release failed');
        }
      }, intervalMs);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = null;
    },
  };
}
