import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { packPaths, transferablesOf } from './path-batch.js';
import { unpackResults, type CompareTask, type HashAlgorithm, type HashResult, type HashTask, type PackedResults } from './hash-worker.js';

/** Hashing on every core: piscina runs hash-worker.ts on one thread per core. */
export interface HashPool {
  /**
   * Per path: the algorithm, maxBytes (larger files are not read; 0: no limit), and whether the
   * walk saw a regular file (others are only lstat'ed, never opened).
   */
  hash(paths: readonly Buffer[], algorithms: readonly HashAlgorithm[], maxBytes: readonly number[], regular: readonly boolean[], xattrs?: readonly boolean[]): Promise<HashResult[]>;
  /**
   * The stat-only re-check, in the worker threads: per path a verdict (SAME, DIFFERENT or GONE, see
   * compareBatch in hash-worker.ts) against its encoded baseline state.
   */
  compare(paths: readonly Buffer[], known: readonly Buffer[], algorithms: readonly (HashAlgorithm | '')[]): Promise<Uint8Array>;
  readonly threads: number;
  /** What the pool's threads run with; a sharded scan's threads (scan-shards.ts) take the same. */
  readonly niceIncrement: number;
  readonly bytesPerSecondPerThread: number;
  close(): Promise<void>;
}

export function createHashPool(opts: { threads?: number; niceIncrement?: number; ioBytesPerSecond?: number | null } = {}): HashPool {
  const threads = opts.threads ?? availableParallelism();
  const perThread = opts.ioBytesPerSecond ? opts.ioBytesPerSecond / threads : 0;
  // Started on first use (a scan of an empty tree needs no thread).
  let piscina: Piscina | null = null;
  const pool = () =>
    (piscina ??= new Piscina({
      // A CommonJS entry that import()s hash-worker.js: see hash-worker-entry.cts for why.
      filename: new URL('./hash-worker-entry.cjs', import.meta.url).href,
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: 30_000,
      ...(opts.niceIncrement ? { niceIncrement: opts.niceIncrement } : {}),
    }));
  return {
    threads,
    niceIncrement: opts.niceIncrement ?? 0,
    bytesPerSecondPerThread: perThread,
    hash(paths, algorithms, maxBytes, regular, xattrs = []) {
      const packed = packPaths(paths);
      const task: HashTask = {
        paths: packed,
        algorithms: [...algorithms],
        maxBytes: [...maxBytes],
        regular: regular.map((r) => (r ? 1 : 0)),
        xattrs: paths.map((_, i) => (xattrs[i] ? 1 : 0)),
        bytesPerSecond: perThread,
      };
      return (pool().run(task, { transferList: transferablesOf(packed) }) as Promise<PackedResults>).then(unpackResults);
    },
    compare(paths, known, algorithms) {
      const task: CompareTask = { paths: packPaths(paths), known: packPaths(known), algorithms: [...algorithms] };
      return pool().run(task, { name: 'compareBatch', transferList: [...transferablesOf(task.paths), ...transferablesOf(task.known)] }) as Promise<Uint8Array>;
    },
    close: async () => {
      await piscina?.destroy();
    },
  };
}
