import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { packPaths, transferablesOf } from './path-batch.js';
import { unpackResults, type HashAlgorithm, type HashResult, type HashTask, type PackedResults } from './hash-worker.js';

/** Hashing on every core: piscina runs hash-worker.ts on one thread per core. */
export interface HashPool {
  /**
   * Per path: the algorithm, maxBytes (larger files are not read; 0: no limit), and whether the
   * walk saw a regular file (others are only lstat'ed, never opened).
   */
  hash(paths: readonly Buffer[], algorithms: readonly HashAlgorithm[], maxBytes: readonly number[], regular: readonly boolean[]): Promise<HashResult[]>;
  /** lstat in the worker threads; STAT_SLOTS values per path (see hash-worker.ts). */
  stat(paths: readonly Buffer[]): Promise<BigInt64Array>;
  readonly threads: number;
  close(): Promise<void>;
}

export function createHashPool(opts: { threads?: number; niceIncrement?: number; ioBytesPerSecond?: number | null } = {}): HashPool {
  const threads = opts.threads ?? availableParallelism();
  const perThread = opts.ioBytesPerSecond ? opts.ioBytesPerSecond / threads : 0;
  // Started on first use (a scan of an empty tree needs no thread).
  let piscina: Piscina | null = null;
  const pool = () =>
    (piscina ??= new Piscina({
      filename: new URL('./hash-worker.js', import.meta.url).href,
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: 30_000,
      ...(opts.niceIncrement ? { niceIncrement: opts.niceIncrement } : {}),
    }));
  return {
    threads,
    hash(paths, algorithms, maxBytes, regular) {
      const packed = packPaths(paths);
      const task: HashTask = {
        paths: packed,
        algorithms: [...algorithms],
        maxBytes: [...maxBytes],
        regular: regular.map((r) => (r ? 1 : 0)),
        bytesPerSecond: perThread,
      };
      return (pool().run(task, { transferList: transferablesOf(packed) }) as Promise<PackedResults>).then(unpackResults);
    },
    stat(paths) {
      const packed = packPaths(paths);
      return pool().run({ paths: packed }, { name: 'statBatch', transferList: transferablesOf(packed) }) as Promise<BigInt64Array>;
    },
    close: async () => {
      await piscina?.destroy();
    },
  };
}
