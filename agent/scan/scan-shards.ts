import { MessageChannel, Worker } from 'node:worker_threads';
import type { PolicyRule } from '../../proto/model.js';
import type { ShardUnit } from './shard-plan.js';
import type { ShardChunk, ShardWorkerData } from './shard-chunk.js';
import { ENTRY_TYPES } from './walker.js';

export interface ShardRunOptions {
  readonly root: Buffer;
  readonly units: readonly ShardUnit[];
  readonly rules: readonly PolicyRule[];
  /** The local store's directory (its baseline is read by the threads), or null. */
  readonly store: string | null;
  readonly fullHash: boolean;
  readonly threads: number;
  readonly bytesPerSecondPerThread: number;
  readonly niceIncrement: number;
}

/**
 * Runs a sharded scan's threads (shard-worker.ts) over the units and hands every chunk they post
 * to onChunk, on this thread, as it arrives (units finish in any order). Resolves when every
 * thread has posted its last chunk; rejects on the first thread that fails (the others are
 * stopped) or when onChunk throws.
 */
export async function runShards(opts: ShardRunOptions, onChunk: (chunk: ShardChunk) => void): Promise<void> {
  const units = opts.units.map((u) => ({
    subtree: u.subtree && new Uint8Array(u.subtree),
    entries: u.entries.map((e) => ({ path: new Uint8Array(e.path), type: ENTRY_TYPES.indexOf(e.type) })),
    start: new Uint8Array(u.start),
    end: new Uint8Array(u.end),
  }));
  const next = new Int32Array(new SharedArrayBuffer(4));
  const threads = Math.max(1, Math.min(opts.threads, units.length));
  const workers: Worker[] = [];
  const exits: Promise<void>[] = [];
  let ok = false;
  try {
    await new Promise<void>((resolve, reject) => {
      let running = threads;
      // After a failure, chunks still in flight from the other threads are dropped, not recorded.
      let failed = false;
      const fail = (err: unknown) => {
        failed = true;
        reject(err);
      };
      for (let t = 0; t < threads; t++) {
        const ahead = new Int32Array(new SharedArrayBuffer(4));
        const { port1: port, port2 } = new MessageChannel();
        const data: ShardWorkerData = {
          root: new Uint8Array(opts.root),
          units,
          next,
          ahead,
          port: port2,
          rules: [...opts.rules],
          store: opts.store,
          fullHash: opts.fullHash,
          bytesPerSecond: opts.bytesPerSecondPerThread,
          niceIncrement: opts.niceIncrement,
        };
        const worker = new Worker(new URL('./shard-worker.js', import.meta.url), { workerData: data, transferList: [port2] });
        workers.push(worker);
        worker.once('error', fail);
        exits.push(
          new Promise<void>((exited) =>
            worker.once('exit', (code) => {
              if (code !== 0) fail(new Error(`scan thread exited with code ${code}`));
              exited();
            }),
          ),
        );
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
          if (chunk.done) {
            port.close();
            if (--running === 0) resolve();
          }
        });
      }
    });
    ok = true;
  } finally {
    // Done: each thread closes its read-only baseline and exits by itself. Failed: stopped.
    if (ok) await Promise.all(exits);
    else await Promise.all(workers.map((w) => w.terminate()));
  }
}
