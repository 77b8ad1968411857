import { once } from 'node:events';
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import type { PolicyRule } from '../../core/model.js';
import { pathAt, pathCount } from './path-batch.js';
import type { WalkChunk, WalkWorkerData } from './walk-worker.js';
import { ENTRY_TYPES, type WalkEntry } from './walker.js';

/**
 * The sorted walk of root under the rules' scope, made on its own thread (walk-worker.ts) and read
 * here chunk by chunk: the same entries, in the same order, as walkSorted with walkScope.
 */
export async function* walkInThread(root: Buffer, rules: readonly PolicyRule[]): AsyncGenerator<WalkEntry[]> {
  const ahead = new Int32Array(new SharedArrayBuffer(4));
  const { port1: port, port2 } = new MessageChannel();
  const data: WalkWorkerData = { root: new Uint8Array(root), rules: [...rules], ahead, port: port2 };
  const worker = new Worker(new URL('./walk-worker.js', import.meta.url), { workerData: data, transferList: [port2] });
  // Messages are read synchronously while some are waiting; a wait costs one event only when none is.
  const failed = once(worker, 'error').then(([err]) => Promise.reject(err as Error));
  failed.catch(() => undefined);
  try {
    for (;;) {
      let msg = receiveMessageOnPort(port)?.message as WalkChunk | undefined;
      if (!msg) msg = (await Promise.race([once(port, 'message'), failed]))[0] as WalkChunk;
      Atomics.sub(ahead, 0, 1);
      Atomics.notify(ahead, 0);
      yield unpack(msg);
      if (msg.done) return;
    }
  } finally {
    port.close();
    await worker.terminate();
  }
}

function unpack(c: WalkChunk): WalkEntry[] {
  return Array.from({ length: pathCount(c.paths) }, (_, i) => ({ path: pathAt(c.paths, i), type: ENTRY_TYPES[c.types[i]!]!, depth: c.depths[i]!, stats: null, slot: 0 }));
}
