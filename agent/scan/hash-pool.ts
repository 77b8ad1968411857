import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { unpackResults, type HashAlgorithm, type HashResult, type HashTask, type PackedResults } from './hash-worker.js';

/** Hashing on every core: piscina runs hash-worker.ts on one thread per core. */
export interface HashPool {
  /** Per path: the algorithm, and maxBytes (larger files are not read; 0: no limit). */
  hash(paths: readonly Buffer[], algorithms: readonly HashAlgorithm[], maxBytes: readonly number[]): Promise<HashResult[]>;
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
    hash(paths, algorithms, maxBytes) {
      // Not views of Buffers: posting a view copies its whole backing pool slab.
      const task: HashTask = { paths: paths.map((p) => p.toString('latin1')), algorithms: [...algorithms], maxBytes: [...maxBytes], bytesPerSecond: perThread };
      return (pool().run(task) as Promise<PackedResults>).then(unpackResults);
    },
    stat(paths) {
      return pool().run({ paths: paths.map((p) => p.toString('latin1')) }, { name: 'statBatch' }) as Promise<BigInt64Array>;
    },
    close: async () => {
      await piscina?.destroy();
    },
  };
}
