import { open as openLmdb, type Database, type DatabaseOptions, type RootDatabase } from 'lmdb';
import { decodeDelta, decodeState, encodeDelta, encodeState } from './state-codec.js';
import type { ChangeKind, ChangeSource, FileDelta, FileState, Policy } from '../proto/model.js';
import { keyIsUnder, keyToPath, pathToKey, withoutTrailingSlashes } from './scan/path-key.js';

/** One change to record: the new baseline entry and the delta that reports it. */
export interface Change {
  readonly path: Buffer;
  readonly kind: ChangeKind;
  readonly state: FileState | null;
  readonly source: ChangeSource;
  readonly detectedAt: Date;
}

/**
 * The agent's durable state (LMDB, survives kill -9): the baseline (path → last known state, keyed
 * by the path's bytes, never all in memory), the outgoing queue (seq → delta) and the next sequence
 * number. A change updates the baseline, numbers the delta and queues it in one transaction.
 */
export interface LocalStore {
  /** The LMDB directory; scan threads open it read-only with openBaselineRanges. */
  readonly location: string;
  getBaseline(path: Buffer): FileState | undefined;
  /** Baseline entries at or below a path, in the order of a depth-first walk with sorted entries. */
  baselineUnder(root: Buffer): Iterable<{ path: Buffer; state: FileState }>;
  /**
   * The same entries undecoded: the key (path-key.ts) and the encoded state (state-codec.ts), for
   * the scan, which decodes only what it needs and leaves the rest to its worker threads. Both
   * are copies, the caller's to keep (lmdb-js hands out views of buffers it reuses).
   */
  encodedBaselineUnder(root: Buffer): Iterable<{ key: Buffer; value: Buffer }>;
  baselineSize(): number;
  /**
   * Atomically: baseline updated, each change numbered and queued. Returns the deltas. With
   * queue false (a local scan of a directory no controller hears about), only the baseline moves.
   */
  record(changes: readonly Change[], opts?: { queue: boolean }): FileDelta[];
  /**
   * Updates baseline entries without reporting: the state moved in ways the rule does not count
   * as a change (a log that grew, a digest made with a new algorithm), so later checks compare
   * against the state as it is.
   */
  refresh(entries: readonly { path: Buffer; state: FileState }[]): void;
  /** Forgets baseline entries without reporting (paths no longer covered by the policy). */
  forget(paths: readonly Buffer[]): void;
  /** Queued deltas with seq > afterSeq, oldest first. */
  pending(afterSeq: number, limit: number): FileDelta[];
  /** Drops every queued delta with seq <= upToSeq (committed by the controller). */
  ack(upToSeq: number): number;
  /**
   * Renumbers every queued delta to follow `afterSeq` (in order) and moves the next sequence
   * number past them; for a local state that was rolled back behind the controller's. Returns how
   * many deltas moved.
   */
  renumberAfter(afterSeq: number): number;
  queueLength(): number;
  lastSeq(): number;
  policy(): Policy | null;
  setPolicy(p: Policy): void;
  close(): Promise<void>;
}

const META_NEXT_SEQ = 'nextSeq';
const META_POLICY = 'policy';

const openEnv = (path: string): RootDatabase => openLmdb({ path, compression: false });
const openBaseline = (env: RootDatabase): Database<Buffer, Buffer> => env.openDB({ name: 'baseline', keyEncoding: 'binary', encoding: 'binary' });

/** Baseline entries by key range, for a scan's worker threads (LMDB is shared by the threads of a process). */
export interface BaselineRanges {
  /**
   * Keys in [start, end), in key order, with their encoded states: views that are valid only until
   * the next step (lmdb-js reuses its buffers); copy what must be kept.
   */
  range(start: Buffer, end: Buffer): Iterable<{ key: Buffer; value: Buffer }>;
  close(): Promise<void>;
}

// The reader hands out views of lmdb-js's own read buffers instead of a copy of every key and
// value (two native allocations per entry, a good part of a re-check's cost): its key and value
// codecs return subarrays. The bytes are the same as the store's binary encoding.
const viewKeys = {
  writeKey: (key: Buffer, target: Buffer, start: number) => start + key.copy(target, start),
  readKey: (source: Buffer, start: number, end: number) => source.subarray(start, end),
};
const viewValues = { encode: (value: Buffer) => value, decode: (source: Buffer, size: number) => source.subarray(0, size) };

export function openBaselineRanges(path: string): BaselineRanges {
  const env = openEnv(path);
  // lmdb-js takes keyEncoder and encoder per database; its typings list them on the root only.
  const baseline: Database<Buffer, Buffer> = env.openDB('baseline', { keyEncoder: viewKeys, encoder: viewValues } as DatabaseOptions);
  return {
    range: (start, end) => baseline.getRange({ start, end }) as Iterable<{ key: Buffer; value: Buffer }>,
    close: () => env.close(),
  };
}

export function openLocalStore(path: string): LocalStore {
  const env = openEnv(path);
  const baseline = openBaseline(env);
  const queue: Database<Buffer, number> = env.openDB({ name: 'queue', encoding: 'binary' });
  const meta: Database<Buffer, string> = env.openDB({ name: 'meta', encoding: 'binary' });

  const nextSeq = () => {
    const v = meta.get(META_NEXT_SEQ);
    return v ? Number(v.readBigUInt64BE()) : 1;
  };
  const u64 = (n: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(n));
    return b;
  };

  return {
    location: path,
    getBaseline(p) {
      const v = baseline.get(pathToKey(p));
      return v ? decodeState(v) : undefined;
    },
    *baselineUnder(root) {
      for (const { key, value } of this.encodedBaselineUnder(root)) yield { path: keyToPath(key), state: decodeState(value) };
    },
    *encodedBaselineUnder(root) {
      const rootKey = pathToKey(withoutTrailingSlashes(root));
      // In key order (see path-key.ts) everything at or below root is one contiguous range.
      for (const { key, value } of baseline.getRange({ start: rootKey })) {
        const k = key as Buffer;
        if (!keyIsUnder(k, rootKey)) break;
        yield { key: Buffer.from(k), value: Buffer.from(value) };
      }
    },
    baselineSize: () => baseline.getCount(),
    record(changes, { queue: toQueue } = { queue: true }) {
      if (changes.length === 0) return [];
      return env.transactionSync(() => {
        let seq = nextSeq();
        const out: FileDelta[] = [];
        for (const c of changes) {
          if (c.state) baseline.putSync(pathToKey(c.path), encodeState(c.state));
          else baseline.removeSync(pathToKey(c.path));
          const d: FileDelta = { seq: toQueue ? seq : 0, path: c.path, kind: c.kind, state: c.state, detectedAt: c.detectedAt, source: c.source };
          if (toQueue) {
            queue.putSync(seq, encodeDelta(d));
            seq++;
          }
          out.push(d);
        }
        if (toQueue) meta.putSync(META_NEXT_SEQ, u64(seq));
        return out;
      });
    },
    refresh(entries) {
      if (!entries.length) return;
      env.transactionSync(() => {
        for (const e of entries) baseline.putSync(pathToKey(e.path), encodeState(e.state));
      });
    },
    forget(paths) {
      env.transactionSync(() => {
        for (const p of paths) baseline.removeSync(pathToKey(p));
      });
    },
    pending(afterSeq, limit) {
      const out: FileDelta[] = [];
      for (const { value } of queue.getRange({ start: afterSeq + 1, limit })) out.push(decodeDelta(value));
      return out;
    },
    ack(upToSeq) {
      return env.transactionSync(() => {
        let n = 0;
        for (const key of queue.getKeys({ end: upToSeq + 1 })) {
          queue.removeSync(key);
          n++;
        }
        return n;
      });
    },
    renumberAfter(afterSeq) {
      return env.transactionSync(() => {
        const entries = [...queue.getRange({})].map(({ key, value }) => ({ key: key as number, delta: decodeDelta(value) }));
        for (const e of entries) queue.removeSync(e.key);
        let seq = afterSeq + 1;
        for (const e of entries) {
          queue.putSync(seq, encodeDelta({ ...e.delta, seq }));
          seq++;
        }
        meta.putSync(META_NEXT_SEQ, u64(Math.max(seq, nextSeq())));
        return entries.length;
      });
    },
    queueLength: () => queue.getCount(),
    lastSeq: () => nextSeq() - 1,
    policy() {
      const v = meta.get(META_POLICY);
      if (!v) return null;
      try {
        return JSON.parse(v.toString('utf8')) as Policy;
      } catch {
        return null; // an older encoding: the controller sends the policy again on connect
      }
    },
    setPolicy(p) {
      // Plain data (no bigint): JSON keeps the store free of the protobuf runtime.
      meta.putSync(META_POLICY, Buffer.from(JSON.stringify(p)));
    },
    async close() {
      await env.close();
    },
  };
}

