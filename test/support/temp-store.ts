import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openLocalStore, type LocalStore } from '../../agent/store/local-store.js';

/** A local store in a fresh temporary directory; dispose() closes it and removes the directory. */
export interface TempStore {
  readonly store: LocalStore;
  readonly dir: string;
  /** Closes the store and opens it again (what a restart sees). */
  reopen(): Promise<LocalStore>;
  dispose(): Promise<void>;
}

export function openTempStore(prefix = 'vigil-store-'): TempStore {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  let store = openLocalStore(join(dir, 'db'));
  return {
    get store() {
      return store;
    },
    dir,
    async reopen() {
      await store.close();
      store = openLocalStore(join(dir, 'db'));
      return store;
    },
    async dispose() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
