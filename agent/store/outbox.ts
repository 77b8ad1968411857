import type { Database, RootDatabase } from 'lmdb';
import type { FileDelta } from '../../core/model.js';
import { DEFAULT_QUEUE_BYTES } from '../../core/policy-defaults.js';
import { readJson, readU64, u64, writeJson, type MetaDb } from './lmdb-env.js';
import { decodeDelta, encodeDelta } from './state-codec.js';

/** Set while the queue overflowed: since when and how many changes were not queued. */
export interface Resync {
  readonly since: Date;
  readonly unqueued: number;
}

/**
 * The outgoing queue (seq → delta), bounded in bytes, and the next sequence number. Deltas enter
 * only through the journal (journal.ts), in the transaction that moves the baseline; they leave
 * when an ack after the controller's commit covers them.
 */
export interface Outbox {
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
  /** The last sequence number given to a delta (0 before the first). */
  lastSeq(): number;
  length(): number;
  /** Bytes the queued deltas take (their encoded size). */
  bytes(): number;
  limitBytes(): number;
  /** Set while the queue overflowed (see Appender). */
  resync(): Resync | null;
  /** Queues normally again; the caller reconciles (the baseline holds what was not queued). */
  clearResync(): void;
}

/** Appends deltas inside the journal's transaction; finish() writes the counters once. */
export interface Appender {
  /**
   * The delta numbered and queued, or with seq 0 when it would take the queue past its bound: the
   * outbox then records "resync needed" and queues nothing more until it is cleared.
   */
  add(delta: FileDelta): FileDelta;
  finish(): void;
}

/** The outbox with what the journal and the store need beside its public face. */
export interface OutboxWriter extends Outbox {
  /** Call inside a transaction of the environment. */
  appender(): Appender;
  setLimitBytes(bytes: number): void;
}

const NEXT_SEQ = 'nextSeq';
const QUEUE_BYTES = 'queueBytes';
const RESYNC = 'resync';

export function createOutbox(env: RootDatabase, meta: MetaDb, limitBytes = DEFAULT_QUEUE_BYTES): OutboxWriter {
  const queue: Database<Buffer, number> = env.openDB({ name: 'queue', encoding: 'binary' });
  const nextSeq = () => readU64(meta, NEXT_SEQ, 1);
  const readResync = (): Resync | null => {
    const r = readJson<{ since: string; unqueued: number }>(meta, RESYNC);
    return r ? { since: new Date(r.since), unqueued: r.unqueued } : null;
  };
  // Kept in memory: every append checks it.
  let limit = limitBytes;
  return {
    pending(afterSeq, max) {
      const out: FileDelta[] = [];
      for (const { value } of queue.getRange({ start: afterSeq + 1, limit: max })) out.push(decodeDelta(value));
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
        if (n) meta.putSync(QUEUE_BYTES, u64(Math.max(0, readU64(meta, QUEUE_BYTES, 0) - freed)));
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
        meta.putSync(NEXT_SEQ, u64(Math.max(seq, nextSeq())));
        meta.putSync(QUEUE_BYTES, u64(bytes));
        return entries.length;
      });
    },
    lastSeq: () => nextSeq() - 1,
    length: () => queue.getCount(),
    bytes: () => readU64(meta, QUEUE_BYTES, 0),
    limitBytes: () => limit,
    resync: readResync,
    clearResync() {
      meta.removeSync(RESYNC);
    },
    setLimitBytes(bytes) {
      limit = bytes;
    },
    appender() {
      let seq = nextSeq();
      let bytes = readU64(meta, QUEUE_BYTES, 0);
      const before = readResync();
      let resync = before;
      return {
        add(d) {
          const queued = resync ? null : encodeDelta({ ...d, seq });
          if (queued && bytes + queued.length <= limit) {
            queue.putSync(seq, queued);
            bytes += queued.length;
            return { ...d, seq: seq++ };
          }
          // The baseline has moved; reconciliation will send what the queue could not hold.
          resync = { since: resync?.since ?? d.detectedAt, unqueued: (resync?.unqueued ?? 0) + 1 };
          return { ...d, seq: 0 };
        },
        finish() {
          meta.putSync(NEXT_SEQ, u64(seq));
          meta.putSync(QUEUE_BYTES, u64(bytes));
          if (resync !== before) writeJson(meta, RESYNC, { since: resync!.since.toISOString(), unqueued: resync!.unqueued });
        },
      };
    },
  };
}
