import { MessageChannel, Worker } from 'node:worker_threads';
import type { PolicyRule } from '../../core/model.js';
import type { ShardUnit } from './shard-plan.js';
import { STOP, type ShardChunk, type ShardJob, type ShardThreadData } from './shard-chunk.js';
import { ENTRY_TYPES } from './walker.js';

/** One sharded scan: the units of one root, run by every scan thread. */
export interface ShardRun {
  readonly root: Buffer;
  readonly units: readonly ShardUnit[];
  readonly rules: readonly PolicyRule[];
  /** The local store's directory (its baseline is read by the threads), or null. */
  readonly store: string | null;
  readonly fullHash: boolean;
}

export interface ScanThreadsOptions {
  /** Threads (default in createHashPool: one per core). */
  readonly threads: number;
  /** Added to each thread's nice value (Linux: per thread). Default 0. */
  readonly niceIncrement?: number;
  /** Each thread's share of the read rate limit; 0 (default): none. */
  readonly bytesPerSecondPerThread?: number;
  /**
   * Idle threads exit after this long and start again with the next scan. Default 5 s: long
   * enough for a policy's roots, scanned one after another, to share them; each thread holds
   * about 20 MB that an idle agent should not.
   */
  readonly idleTimeoutMs?: number;
}

/**
 * The scan threads (shard-worker.ts) of sharded scans, kept between scans: starting a thread and
 * loading its modules (LMDB the largest) takes about as long as re-checking 15,000 paths, so
 * threads are started once (start() at once, or by the first run) and reused until they have
 * been idle for idleTimeoutMs. They never keep the process alive by themselves.
 */
export interface ScanThreads {
  readonly threads: number;
  /** Starts the threads now (they load while the caller does other work). */
  start(): void;
  /**
   * Runs one sharded scan and hands every chunk to onChunk, on this thread, as it arrives (units
   * finish in any order). Resolves when every thread has posted its last chunk; rejects on the
   * first thread that fails or when onChunk throws (the threads are then stopped, chunks still in
   * flight are dropped, and the next run starts new ones). Runs one scan at a time: a second
   * run waits for the first.
   */
  run(job: ShardRun, onChunk: (chunk: ShardChunk) => void): Promise<void>;
  /** Threads alive now (started, not yet exited). */
  live(): number;
  close(): Promise<void>;
}

export function createScanThreads(opts: ScanThreadsOptions): ScanThreads {
  const count = Math.max(1, opts.threads);
  const idleTimeoutMs = opts.idleTimeoutMs ?? 5_000;
  const data: ShardThreadData = { niceIncrement: opts.niceIncrement ?? 0, bytesPerSecond: opts.bytesPerSecondPerThread ?? 0 };
  // A thread that exits (failure, idle timeout, close) is replaced by the next run.
  let workers: Worker[] = [];
  let idleTimer: NodeJS.Timeout | null = null;
  let tail: Promise<void> = Promise.resolve();
  let closed = false;

  // Idle threads are asked to exit (a thread still loading its modules exits once loaded:
  // terminating it inside LMDB's native module setup aborts the process); after a failed run
  // they are terminated where they are.
  const stopAll = async (how: 'ask' | 'terminate') => {
    const stopping = workers;
    workers = [];
    await Promise.all(
      stopping.map((w) => {
        if (how === 'terminate') return w.terminate();
        const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
        w.ref(); // this wait keeps the process up until the thread is gone
        w.postMessage(STOP);
        return exited;
      }),
    );
  };
  const start = () => {
    while (workers.length < count) {
      const worker = new Worker(new URL('./shard-worker.js', import.meta.url), { workerData: data });
      worker.unref();
      const forget = () => {
        workers = workers.filter((w) => w !== worker);
      };
      worker.once('exit', forget);
      // Between runs an error ends only that thread; during a run it also fails the run (below).
      worker.on('error', forget);
      workers.push(worker);
    }
  };

  const runOnce = async (job: ShardRun, onChunk: (chunk: ShardChunk) => void): Promise<void> => {
    if (closed) throw new Error('the scan threads are closed');
    if (idleTimer) clearTimeout(idleTimer);
    start();
    const units = job.units.map((u) => ({
      subtree: u.subtree && new Uint8Array(u.subtree),
      entries: u.entries.map((e) => ({ path: new Uint8Array(e.path), type: ENTRY_TYPES.indexOf(e.type) })),
      start: new Uint8Array(u.start),
      end: new Uint8Array(u.end),
    }));
    const next = new Int32Array(new SharedArrayBuffer(4));
    // No more threads than units: the others stay idle for this run.
    const taking = workers.slice(0, Math.min(workers.length, units.length));
    const cleanups: (() => void)[] = [];
    let ok = false;
    try {
      await new Promise<void>((resolve, reject) => {
        let running = taking.length;
        // After a failure, chunks still in flight from the other threads are dropped, not recorded.
        let failed = false;
        const fail = (err: unknown) => {
          failed = true;
          reject(err);
        };
        for (const worker of taking) {
          const ahead = new Int32Array(new SharedArrayBuffer(4));
          const { port1: port, port2 } = new MessageChannel();
          const onExit = (code: number) => fail(new Error(`scan thread exited with code ${code}`));
          worker.once('error', fail);
          worker.once('exit', onExit);
          cleanups.push(() => {
            worker.off('error', fail);
            worker.off('exit', onExit);
            port.close();
          });
          port.on('message', (chunk: ShardChunk) => {
            if (failed) return;
            try {
              onChunk(chunk);
            } catch (err) {
              fail(err);
              return;
            }
            Atomics.sub(ahead, 0, 1);
            Atomics.notify(ahead, 0);
            if (chunk.done && --running === 0) resolve();
          });
          const message: ShardJob = { root: new Uint8Array(job.root), units, next, ahead, port: port2, rules: [...job.rules], store: job.store, fullHash: job.fullHash };
          worker.postMessage(message, [port2]);
        }
        if (running === 0) resolve();
      });
      ok = true;
    } finally {
      for (const c of cleanups) c();
      // Failed: the threads may be anywhere in their units; stopped, and replaced next run.
      if (!ok) await stopAll('terminate');
      else if (!closed) {
        idleTimer = setTimeout(() => void stopAll('ask'), idleTimeoutMs);
        idleTimer.unref();
      }
    }
  };

  return {
    threads: count,
    start() {
      if (!closed) start();
    },
    live: () => workers.length,
    run(job, onChunk) {
      const result = tail.then(() => runOnce(job, onChunk));
      tail = result.catch(() => undefined);
      return result;
    },
    async close() {
      closed = true;
      if (idleTimer) clearTimeout(idleTimer);
      await tail;
      await stopAll('ask');
    },
  };
}
