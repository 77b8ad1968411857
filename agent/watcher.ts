import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import watcher from '@parcel/watcher';
import type { Logger } from 'pino';

/** Real-time change notifications for a set of roots (@parcel/watcher, inotify on Linux). */
export interface Watcher {
  close(): Promise<void>;
}

export interface WatchOptions {
  readonly roots: readonly string[];
  /** Called with the paths that changed (absolute, possibly lossy for non-UTF-8 names). */
  readonly onPaths: (paths: string[]) => void;
  /** The watcher lost events or could not watch: the caller re-scans. */
  readonly onOverflow: (root: string, err: Error) => void;
  readonly logger: Logger;
}

/**
 * Subscribes to every root. A root that is a file is watched through its parent directory; a root
 * that does not exist yet is reported and left to scheduled scans.
 */
export async function watchRoots(opts: WatchOptions): Promise<Watcher> {
  const subs: watcher.AsyncSubscription[] = [];
  for (const root of opts.roots) {
    let dir = root;
    let only: string | null = null;
    try {
      const st = await stat(root);
      if (!st.isDirectory()) {
        dir = dirname(root);
        only = root;
      }
    } catch (err) {
      opts.logger.warn({ root, err: (err as Error).message }, 'policy path does not exist; not watched in real time');
      continue;
    }
    try {
      const sub = await watcher.subscribe(dir, (err, events) => {
        if (err) {
          opts.onOverflow(root, err);
          return;
        }
        const paths = events.map((e) => e.path).filter((p) => only === null || p === only);
        if (paths.length) opts.onPaths(paths);
      });
      subs.push(sub);
    } catch (err) {
      opts.logger.error({ root, err: (err as Error).message }, 'cannot watch path in real time; scheduled scans cover it');
      opts.onOverflow(root, err as Error);
    }
  }
  return {
    async close() {
      await Promise.all(subs.map((s) => s.unsubscribe()));
    },
  };
}
