import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** The functions of the agent's native addon (agent/native, N-API in C). */
export interface NativeAddon {
  /** listing.ts */
  listDirectory(dir: Buffer): { names: string[]; stats: Uint32Array } | number;
  /** stat-fd.ts */
  statFd(fd: number, words: Uint32Array, at: number): number;
  /** agent/watch/inotify.ts */
  inotifyOpen(onEvents: (chunk: Buffer | null, errno: number) => void): object | number;
  inotifyAdd(handle: object, path: Buffer, mask: number): number;
  inotifyRemove(handle: object, wd: number): number;
  inotifyRead(handle: object): Buffer | null | number;
  inotifyClose(handle: object): void;
  /** agent/watch/fanotify.ts */
  fanotifyOpen(): object | number;
  fanotifyMark(handle: object, dir: Buffer, add: boolean): number;
  fanotifyRead(handle: object): Buffer | null | number;
  fanotifyClose(handle: object): void;
  /** agent/xattrs.ts: a path's extended attributes (not following a symlink), or -errno. */
  readXattrs(path: Buffer): [name: Buffer, value: Buffer][] | number;
  /** lsetxattr, for tests and tools: 0, or -errno. */
  setXattr(path: Buffer, name: string, value: Buffer): number;
  /** agent/idle-memory.ts: bytes of the file's shared mappings advised away, or -errno. */
  releaseFileMappings(path: Buffer): number;
  /** agent/idle-memory.ts: glibc's malloc_trim(0); false where there is none. */
  trimMallocHeap(): boolean;
}

// Built by `npm run build` (node-gyp) beside its source; this module runs from dist/agent/scan.
const ADDON = new URL('../../../agent/native/build/Release/vigil_native.node', import.meta.url);
let loaded: NativeAddon | null | undefined;

/**
 * The native addon, or null where it is not built (no C compiler) or VIGIL_NATIVE=0: callers then
 * fall back to Node's fs calls (same results, slower; tests run both).
 */
export function nativeAddon(env: NodeJS.ProcessEnv = process.env): NativeAddon | null {
  if (env.VIGIL_NATIVE === '0') return null;
  return loadNativeAddon();
}

/**
 * The addon whatever VIGIL_NATIVE says: the real-time watcher (inotify) has no fallback in
 * Node's fs API. Null where it is not built.
 */
export function loadNativeAddon(): NativeAddon | null {
  if (loaded !== undefined) return loaded;
  const file = fileURLToPath(ADDON);
  loaded = existsSync(file) ? (createRequire(import.meta.url)(file) as NativeAddon) : null;
  return loaded;
}
