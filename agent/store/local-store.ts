import { join } from 'node:path';
import { open as openLmdb, type Database, type DatabaseOptions, type RootDatabase } from 'lmdb';
import { decodeDelta, decodeState, encodeDelta, encodeState } from './state-codec.js';
import type { ChangeKind, ChangeSource, FileDelta, FileState, Policy } from '../../core/model.js';
import { DEFAULT_QUEUE_BYTES } from '../../core/policy-defaults.js';
import { keyIsUnder, keyToPath, pathToKey, withoutTrailingSlashes } from './path-key.js';

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
  /** The LMDB data file, which the store maps into memory (agent/idle-memory.ts releases its pages). */
  readonly dataFile: string;
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
   * Atomically: baseline updated, each change numbered and queued. Returns the deltas (seq 0 for
   * those not queued). With queue false (a local scan of a directory no controller hears about),
   * only the baseline moves. A change that would take the queue past its bound is not queued:
   * the store records "resync needed" (see resync()) and queues nothing more until it is cleared.
   */
  record(changes: readonly Change[], opts?: { queue: boolean }): FileDelta[];
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
  /** Bytes the queued deltas take (their encoded size). */
  queueBytes(): number;
  queueLimitBytes(): number;
  /** Set while the queue overflowed: since when and how many changes were not queued. */
  resync(): Resync | null;
  /** Queues normally again; the caller reconciles (the baseline holds what was not queued). */
  clearResync(): void;
  /** Gap records (the watcher may have missed changes), the most recent ones and the total. */
  gaps(): { readonly recent: readonly GapRecord[]; readonly total: number };
  addGap(g: GapRecord): void;
  lastReconcile(): { readonly at: Date; readonly repairs: number } | null;
  setLastReconcile(r: { at: Date; repairs: number }): void;
  lastSeq(): number;
  policy(): Policy | null;
  setPolicy(p: Policy): void;
  close(): Promise<void>;
}

export interface Resync {
  readonly since: Date;
  readonly unqueued: number;
}

export interface GapRecord {
  readonly at: Date;
  readonly root: string;
  readonly reason: 'overflow' | 'watch_failed';
  readonly detail: string;
  readonly changesFound: number;
}

const META_NEXT_SEQ = 'nextSeq';
const META_POLICY = 'policy';
const META_QUEUE_BYTES = 'queueBytes';
const META_RESYNC = 'resync';
const META_GAPS = 'gaps';
const META_RECONCILE = 'reconcile';
/** Gap records kept (and shown by vigilctl agents show); the total counts every one. */
export const RECENT_GAPS = 20;

/**
 * Address space reserved for the map up front (not memory: only pages read or written become
 * resident, and the file grows only as data is written). lmdb-js otherwise starts at 128 KiB and
 * doubles, keeping every earlier map for readers that may still use it, so a /usr baseline left
 * about twice the file's size resident in maps no one reads any more. A bigger store still grows.
 */
const MAP_BYTES = 2 ** 30;
// remapChunks off (lmdb-js's default on 64-bit without encryption, said here because it matters):
// with it, lmdb-js unmaps chunks at the end of transactions on any thread, and the idle release
// (agent/native/memory.c) relies on no map of the open environment ever being unmapped.
const openEnv = (path: string): RootDatabase => openLmdb({ path, compression: false, mapSize: MAP_BYTES, remapChunks: false });
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

  const readU64 = (key: string, otherwise: number) => {
    const v = meta.get(key);
    return v ? Number(v.readBigUInt64BE()) : otherwise;
  };
  const nextSeq = () => readU64(META_NEXT_SEQ, 1);
  const u64 = (n: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(n));
    return b;
  };
  const readJson = <T>(key: string): T | null => {
    const v = meta.get(key);
    return v ? (JSON.parse(v.toString('utf8')) as T) : null;
  };
  const writeJson = (key: string, value: unknown) => meta.putSync(key, Buffer.from(JSON.stringify(value)));
  const limitOf = (p: Policy | null) => p?.limits.queueBytes ?? DEFAULT_QUEUE_BYTES;
  const readResync = (): Resync | null => {
    const r = readJson<{ since: string; unqueued: number }>(META_RESYNC);
    return r ? { since: new Date(r.since), unqueued: r.unqueued } : null;
  };
  // Kept in memory: record() checks it on every change.
  let queueLimit = DEFAULT_QUEUE_BYTES;

  try {
    queueLimit = limitOf(readJson<Policy>(META_POLICY));
  } catch {
    // an older encoding: the default until the controller sends the policy again
  }

  return {
    location: path,
    dataFile: join(path, 'data.mdb'),
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
        let bytes = readU64(META_QUEUE_BYTES, 0);
        let resync = toQueue ? readResync() : null;
        const resyncBefore = resync;
        const out: FileDelta[] = [];
        for (const c of changes) {
          if (c.state) baseline.putSync(pathToKey(c.path), encodeState(c.state));
          else baseline.removeSync(pathToKey(c.path));
          const d: FileDelta = { seq: 0, path: c.path, kind: c.kind, state: c.state, detectedAt: c.detectedAt, source: c.source };
          if (!toQueue) {
            out.push(d);
            continue;
          }
          const queued = resync ? null : encodeDelta({ ...d, seq });
          if (queued && bytes + queued.length <= queueLimit) {
            queue.putSync(seq, queued);
            bytes += queued.length;
            out.push({ ...d, seq });
            seq++;
          } else {
            // The baseline has moved; reconciliation will send what the queue could not hold.
            resync = { since: resync?.since ?? c.detectedAt, unqueued: (resync?.unqueued ?? 0) + 1 };
            out.push(d);
          }
        }
        if (toQueue) {
          meta.putSync(META_NEXT_SEQ, u64(seq));
          meta.putSync(META_QUEUE_BYTES, u64(bytes));
          if (resync !== resyncBefore) writeJson(META_RESYNC, { since: resync!.since.toISOString(), unqueued: resync!.unqueued });
        }
        return out;
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
        let freed = 0;
        for (const { key, value } of queue.getRange({ end: upToSeq + 1 })) {
          queue.removeSync(key);
          freed += value.length;
          n++;
        }
        if (n) meta.putSync(META_QUEUE_BYTES, u64(Math.max(0, readU64(META_QUEUE_BYTES, 0) - freed)));
        return n;
      });
    },
    renumberAfter(afterSeq) {
      return env.transactionSync(() => {
        const entries = [...queue.getRange({})].map(({ key, value }) => ({ key: key as number, delta: decodeDelta(value) }));
        for (const e of entries) queue.removeSync(e.key);
        let seq = afterSeq + 1;
        let bytes = 0;
        for (const e of entries) {
          const encoded = encodeDelta({ ...e.delta, seq });
          queue.putSync(seq, encoded);
          bytes += encoded.length;
          seq++;
        }
        meta.putSync(META_NEXT_SEQ, u64(Math.max(seq, nextSeq())));
        meta.putSync(META_QUEUE_BYTES, u64(bytes));
        return entries.length;
      });
    },
    queueLength: () => queue.getCount(),
    queueBytes: () => readU64(META_QUEUE_BYTES, 0),
    queueLimitBytes: () => queueLimit,
    resync: readResync,
    clearResync() {
      meta.removeSync(META_RESYNC);
    },
    gaps() {
      const g = readJson<{ recent: (Omit<GapRecord, 'at'> & { at: string })[]; total: number }>(META_GAPS);
      return { recent: (g?.recent ?? []).map((r) => ({ ...r, at: new Date(r.at) })), total: g?.total ?? 0 };
    },
    addGap(gap) {
      env.transactionSync(() => {
        const g = this.gaps();
        writeJson(META_GAPS, { recent: [...g.recent, gap].slice(-RECENT_GAPS), total: g.total + 1 });
      });
    },
    lastReconcile() {
      const r = readJson<{ at: string; repairs: number }>(META_RECONCILE);
      return r ? { at: new Date(r.at), repairs: r.repairs } : null;
    },
    setLastReconcile(r) {
      writeJson(META_RECONCILE, { at: r.at.toISOString(), repairs: r.repairs });
    },
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
      queueLimit = limitOf(p);
    },
    async close() {
      await env.close();
    },
  };
}

