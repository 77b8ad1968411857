import { availableParallelism } from 'node:os';
import type { Piscina } from 'piscina';
import { packPaths, transferablesOf } from './path-batch.js';
import { createScanThreads, type ScanThreads } from './scan-threads.js';
import { unpackResults, type CompareTask, type HashAlgorithm, type HashResult, type HashTask, type PackedResults } from './hash-worker.js';

/**
 * Scanning on every core: the scan threads of sharded scans (scan-threads.ts), and for ordered
 * scans and real-time checks piscina running hash-worker.ts, each one thread per core.
 */
export interface HashPool {
  /**
   * Per path: the algorithm, maxBytes (larger files are not read; 0: no limit), and whether the
   * walk saw a regular file (others are only lstat'ed, never opened).
   */
  hash(paths: readonly Buffer[], algorithms: readonly HashAlgorithm[], maxBytes: readonly number[], regular: readonly boolean[], xattrs?: readonly number[]): Promise<HashResult[]>;
  /**
   * The stat-only re-check, in the worker threads: per path a verdict (SAME, DIFFERENT or GONE, see
   * compareBatch in hash-worker.ts) against its encoded baseline state.
   */
  compare(paths: readonly Buffer[], known: readonly Buffer[], algorithms: readonly (HashAlgorithm | '')[]): Promise<Uint8Array>;
  readonly threads: number;
  /** The sharded scans' threads, with the same count, niceness and read rate. */
  readonly shards: ScanThreads;
  /** Threads alive now, scan and hashing threads together (they leave 5 s after their last task). */
  liveThreads(): number;
  close(): Promise<void>;
}

export function createHashPool(opts: { threads?: number; niceIncrement?: number; ioBytesPerSecond?: number | null } = {}): HashPool {
  const threads = opts.threads ?? availableParallelism();
  const perThread = opts.ioBytesPerSecond ? opts.ioBytesPerSecond / threads : 0;
  // Loaded and started on first use: a sharded scan (scan-threads.ts) and a scan of an empty tree
  // need none of it.
  let piscina: Promise<Piscina> | null = null;
  let running: Piscina | null = null;
  const pool = () =>
    (piscina ??= import('piscina').then(({ Piscina }) => (running = new Piscina({
      // A CommonJS entry that import()s hash-worker.js: see hash-worker-entry.cts for why.
      filename: new URL('./hash-worker-entry.cjs', import.meta.url).href,
      // Started as tasks come and gone 5 s after the last (an idle agent holds no hashing thread).
      minThreads: 0,
      maxThreads: threads,
      idleTimeout: 5_000,
      ...(opts.niceIncrement ? { niceIncrement: opts.niceIncrement } : {}),
    }))));
  const shards = createScanThreads({ threads, niceIncrement: opts.niceIncrement ?? 0, bytesPerSecondPerThread: perThread });
  return {
    threads,
    shards,
    liveThreads: () => shards.live() + (running?.threads.length ?? 0),
    hash(paths, algorithms, maxBytes, regular, xattrs = []) {
      const packed = packPaths(paths);
      const task: HashTask = {
        paths: packed,
        algorithms: [...algorithms],
        maxBytes: [...maxBytes],
        regular: regular.map((r) => (r ? 1 : 0)),
        xattrs: paths.map((_, i) => xattrs[i] ?? 0),
        bytesPerSecond: perThread,
      };
      return pool()
        .then((p) => p.run(task, { transferList: transferablesOf(packed) }) as Promise<PackedResults>)
        .then(unpackResults);
    },
    compare(paths, known, algorithms) {
      const task: CompareTask = { paths: packPaths(paths), known: packPaths(known), algorithms: [...algorithms] };
      return pool().then((p) => p.run(task, { name: 'compareBatch', transferList: [...transferablesOf(task.paths), ...transferablesOf(task.known)] }) as Promise<Uint8Array>);
    },
    close: async () => {
      await shards.close();
      if (piscina) await (await piscina).destroy();
    },
  };
}
