import { availableParallelism } from 'node:os';
import type { Piscina } from 'piscina';
import { packPaths, transferablesOf } from './path-batch.js';
import { createScanThreads, type ScanThreads } from './scan-threads.js';
import { LSTAT_FIRST, LSTAT_ONLY, OPEN, unpackResults, type CompareTask, type DescriptorTask, type HashAlgorithm, type HashResult, type HashTask, type PackedResults } from './hash-worker.js';

/**
 * Reading on every core: the scan threads of sharded scans (scan-threads.ts), and for ordered
 * scans and real-time checks piscina running hash-worker.ts, each one thread per core, all niced
 * and throttled as the policy's limits say. Every read follows agent/hashing/hash-file.ts.
 */
export interface HashPool {
  /**
   * Per path: the algorithm, maxBytes (larger files are not read; 0: no limit), and whether the
   * walk saw a regular file (others are only lstat'ed, never opened).
   */
  hash(paths: readonly Buffer[], algorithms: readonly HashAlgorithm[], maxBytes: readonly number[], regular: readonly boolean[], xattrs?: readonly number[]): Promise<HashResult[]>;
  /** A real-time check: hash() of paths whose type is not known (each lstat'ed first, opened only if regular). */
  read(paths: readonly Buffer[], algorithms: readonly HashAlgorithm[], maxBytes: readonly number[], xattrs: readonly number[]): Promise<HashResult[]>;
  /**
   * The file behind a descriptor this process holds (a fanotify close-write), read even when its
   * path is gone; the caller closes the descriptor once this settles.
   */
  readDescriptor(fd: number, algorithm: HashAlgorithm, maxBytes: number): Promise<HashResult>;
  /**
   * Starts a hashing thread now unless one runs (they leave 5 s after their last task): called
   * when the watcher's coalescing window opens, so the check that follows finds one started.
   */
  warm(): void;
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
  // A thread starting for warm(): a real-time read waits for it rather than have piscina start a
  // second one beside it.
  let warming: Promise<unknown> | null = null;
  const run = (paths: readonly Buffer[], algorithms: readonly HashAlgorithm[], maxBytes: readonly number[], regular: number[], xattrs: readonly number[]) => {
    const packed = packPaths(paths);
    const task: HashTask = {
      paths: packed,
      algorithms: [...algorithms],
      maxBytes: [...maxBytes],
      regular,
      xattrs: paths.map((_, i) => xattrs[i] ?? 0),
      bytesPerSecond: perThread,
    };
    return pool()
      .then((p) => p.run(task, { transferList: transferablesOf(packed) }) as Promise<PackedResults>)
      .then(unpackResults);
  };
  const shards = createScanThreads({ threads, niceIncrement: opts.niceIncrement ?? 0, bytesPerSecondPerThread: perThread });
  return {
    threads,
    shards,
    liveThreads: () => shards.live() + (running?.threads.length ?? 0),
    hash(paths, algorithms, maxBytes, regular, xattrs = []) {
      return run(paths, algorithms, maxBytes, regular.map((r) => (r ? OPEN : LSTAT_ONLY)), xattrs);
    },
    async read(paths, algorithms, maxBytes, xattrs) {
      await warming;
      return run(paths, algorithms, maxBytes, paths.map(() => LSTAT_FIRST), xattrs);
    },
    async readDescriptor(fd, algorithm, maxBytes) {
      await warming;
      const task: DescriptorTask = { fd, algorithm, maxBytes, bytesPerSecond: perThread };
      const packed = (await (await pool()).run(task, { name: 'hashDescriptor' })) as PackedResults;
      return unpackResults(packed)[0]!;
    },
    warm() {
      if (warming || running?.threads.length) return;
      warming = pool()
        .then((p) => p.run(null, { name: 'warm' }))
        .catch(() => undefined) // a real task will say what went wrong
        .finally(() => (warming = null));
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
