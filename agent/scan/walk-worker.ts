/**
 * The scan's walk on a thread of its own: the sorted walk (walker.ts) under the policy's scope
 * (walk-scope.ts), streamed to the scanning thread in packed chunks, so directory listings (a
 * third of a re-check's work) run beside the comparison instead of before it. Backpressure: at
 * most MAX_AHEAD chunks unread; the thread waits on a shared counter the reader decrements.
 */
import { workerData, type MessagePort } from 'node:worker_threads';
import type { PolicyRule } from '../../core/model.js';
import { createPathRules } from '../../core/policy-match.js';
import { packPaths, transferablesOf, type PathBatch } from './path-batch.js';
import { walkScope } from './walk-scope.js';
import { ENTRY_TYPES, walkSorted } from './walker.js';

export interface WalkWorkerData {
  readonly root: Uint8Array;
  readonly rules: PolicyRule[];
  /** [0]: chunks posted and not yet read. */
  readonly ahead: Int32Array;
  /** Where the chunks go. */
  readonly port: MessagePort;
}

export interface WalkChunk {
  readonly paths: PathBatch;
  /** Index in ENTRY_TYPES. */
  readonly types: Uint8Array;
  readonly depths: Uint16Array;
  readonly done: boolean;
}

export const MAX_AHEAD = 8;
const CHUNK_ENTRIES = 2048;

function run({ root, rules, ahead, port }: WalkWorkerData): void {
  const top = Buffer.from(root);
  // Listed with readdir: the ordered scan lstat's what it re-checks on its own threads.
  const walk = walkSorted(top, { ...walkScope(top, createPathRules(rules)), listDirectory: null });
  let entries: { path: Buffer; type: number; depth: number }[] = [];
  const post = (done: boolean) => {
    while (Atomics.load(ahead, 0) >= MAX_AHEAD) Atomics.wait(ahead, 0, MAX_AHEAD, 1000);
    const chunk: WalkChunk = {
      paths: packPaths(entries.map((e) => e.path)),
      types: Uint8Array.from(entries, (e) => e.type),
      depths: Uint16Array.from(entries, (e) => Math.min(e.depth, 0xffff)),
      done,
    };
    Atomics.add(ahead, 0, 1);
    port.postMessage(chunk, [...transferablesOf(chunk.paths), chunk.types.buffer as ArrayBuffer, chunk.depths.buffer as ArrayBuffer]);
    entries = [];
  };
  for (const e of walk) {
    entries.push({ path: e.path, type: ENTRY_TYPES.indexOf(e.type), depth: e.depth });
    if (entries.length >= CHUNK_ENTRIES) post(false);
  }
  post(true);
}

if (workerData) run(workerData as WalkWorkerData);
