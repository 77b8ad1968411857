import type { FileDelta } from '../../core/model.js';
import type { DeltaRefusal, IngestBatch, IngestResult, NewAlert } from '../store/index.js';

/** How the ingest queue shares Postgres between agents (docs/architecture.md, "Ingest"). */
export interface IngestQueueOptions {
  /** Group commits running at once (each holds one pooled connection). Default 3. */
  readonly concurrency?: number;
  /** Most deltas and refusals in one group commit. Default 2,000. */
  readonly groupMax?: number;
  /**
   * Most of one agent's deltas in one group commit: a big batch is committed in slices. Default
   * 250; less while many agents wait (the group is shared among them: groupMax / agents waiting),
   * but never under minSlice.
   */
  readonly agentSlice?: number;
  /** Least of one agent's deltas a group commit takes when it has them. Default 25. */
  readonly minSlice?: number;
  /** How long an agent whose row was locked elsewhere waits before it is offered again. Default 25 ms. */
  readonly lockedRetryMs?: number;
}

export const INGEST_DEFAULTS = { concurrency: 3, groupMax: 2000, agentSlice: 250, minSlice: 25, lockedRetryMs: 25 } as const;

export interface IngestQueueStats {
  /** Agents with a batch waiting or being committed. */
  readonly agents: number;
  /** Deltas and refusals not committed yet. */
  readonly pending: number;
  /** Group commits running. */
  readonly running: number;
}

export interface IngestQueue {
  /**
   * Queues one agent's batch; resolves when all of it is committed (possibly over several group
   * commits, each slice in seq order), with what was stored. An agent's batches are committed one
   * after another, in the order submitted.
   */
  submit(batch: IngestBatch): Promise<IngestResult>;
  stats(): IngestQueueStats;
  /** Resolves when nothing is queued or running. */
  idle(): Promise<void>;
}

type Item = { readonly delta: FileDelta } | { readonly refusal: DeltaRefusal };

/** What one group commit takes of one batch. */
interface SlicePart {
  readonly job: Job;
  readonly taken: number;
  readonly seqs: ReadonlySet<number>;
}

/** One agent's share of a group commit: the front of its queued batches. */
interface Slice {
  readonly batch: IngestBatch;
  readonly parts: readonly SlicePart[];
  readonly size: number;
}
const seqOf = (i: Item) => ('delta' in i ? i.delta.seq : i.refusal.seq);

interface Job {
  readonly batch: IngestBatch;
  /** Deltas and refusals together, in seq order: committed front to back. */
  readonly items: Item[];
  next: number;
  committedSeq: number;
  readonly stored: FileDelta[];
  readonly alerts: NewAlert[];
  readonly refused: DeltaRefusal[];
  resolve(r: IngestResult): void;
  reject(err: unknown): void;
}

/**
 * A fair, bounded front for group commits. Each agent has its own FIFO of batches; a group commit
 * takes a share of items from each waiting agent in round-robin order until it holds `groupMax`,
 * the share shrinking as more agents wait, and an agent with nothing queued before goes to the
 * front, so a fleet-wide burst cannot make one quiet agent wait behind everyone's batches. The
 * queue is bounded by the streams: each hands over only a few batches ahead of its acks
 * (services/stream/delta-pipeline.ts), so HTTP/2 flow control holds back an agent whose batches
 * wait here.
 * A group that fails is retried one agent at a time, so one agent's bad batch fails only its own.
 */
export function createIngestQueue(ingest: (batches: readonly IngestBatch[]) => Promise<(IngestResult | null)[]>, options: IngestQueueOptions = {}): IngestQueue {
  const concurrency = options.concurrency ?? INGEST_DEFAULTS.concurrency;
  const groupMax = options.groupMax ?? INGEST_DEFAULTS.groupMax;
  const agentSlice = options.agentSlice ?? INGEST_DEFAULTS.agentSlice;
  const minSlice = Math.min(agentSlice, options.minSlice ?? INGEST_DEFAULTS.minSlice);
  const lockedRetryMs = options.lockedRetryMs ?? INGEST_DEFAULTS.lockedRetryMs;
  for (const [name, v] of Object.entries({ concurrency, groupMax, agentSlice, minSlice, lockedRetryMs })) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`ingest ${name} must be a whole number of at least 1`);
  }
  const jobs = new Map<string, Job[]>();
  // Agents with a job and no slice being committed, in turn order: those that had nothing queued
  // before (served first), then those served before, at the back of the line again.
  const fresh: string[] = [];
  const ready: string[] = [];
  const busy = new Set<string>();
  /** Agents whose row was locked by another transaction: offered again after lockedRetryMs. */
  const deferred = new Set<string>();
  let running = 0;
  let pending = 0;
  let idleWaiters: (() => void)[] = [];

  /** Ends every queued batch of the agent (revoked, or its stream is to fail). */
  const drop = (agentId: string, end: (job: Job) => void) => {
    for (const job of jobs.get(agentId) ?? []) {
      pending -= job.items.length - job.next;
      end(job);
    }
    jobs.delete(agentId);
  };

  const settle = (agentId: string, slice: Slice, r: IngestResult | null) => {
    if (r === null) {
      deferred.add(agentId);
      return;
    }
    // Nothing more of a revoked agent is stored: this batch and every queued one end here.
    if (r.revoked) return drop(agentId, (j) => j.resolve(r));
    for (const { job, taken, seqs } of slice.parts) {
      job.next += taken;
      pending -= taken;
      // Every seq up to the agent's committed one is in Postgres: an earlier batch may say so.
      job.committedSeq = Math.max(job.committedSeq, r.committedSeq);
      // A slice of one batch (the common case) takes the whole result as it is.
      const mine = <T extends { readonly seq: number }>(list: readonly T[]) => (slice.parts.length === 1 ? list : list.filter((x) => seqs.has(x.seq)));
      job.stored.push(...mine(r.stored));
      job.alerts.push(...mine(r.alerts));
      job.refused.push(...mine(r.refused));
      if (job.next < job.items.length) return;
      const list = jobs.get(agentId)!;
      list.shift();
      if (list.length === 0) jobs.delete(agentId);
      job.resolve({ revoked: false, committedSeq: job.committedSeq, stored: job.stored, alerts: job.alerts, refused: job.refused });
    }
  };

  // The agent's stream ends; the agent resends from its last ack, and resends are harmless.
  const fail = (agentId: string, err: unknown) => drop(agentId, (j) => j.reject(err));

  /**
   * Up to agentSlice of the agent's items, from its first batch on into the next ones while their
   * seqs go on rising (a quiet agent's many one-delta batches go in one slice; batches of two
   * streams of one agent, which may resend the same seqs, never share one).
   */
  const sliceOf = (agentId: string, list: readonly Job[], share: number): Slice => {
    const deltas: FileDelta[] = [];
    const refusals: DeltaRefusal[] = [];
    const parts: SlicePart[] = [];
    let room = share;
    let last = -Infinity;
    for (const job of list) {
      const items = job.items.slice(job.next, job.next + room);
      if (items.length && seqOf(items[0]!) <= last) break;
      const seqs = new Set<number>();
      for (const i of items) {
        seqs.add(seqOf(i));
        if ('delta' in i) deltas.push(i.delta);
        else refusals.push(i.refusal);
      }
      parts.push({ job, taken: items.length, seqs });
      room -= items.length;
      if (items.length) last = seqOf(items.at(-1)!);
      // A batch not taken whole, or no room left: the slice ends here.
      if (job.next + items.length < job.items.length || room <= 0) break;
    }
    return { batch: { agentId, deltas, refusals, alertRuleFor: list[0]!.batch.alertRuleFor }, parts, size: share - room };
  };

  const commit = async (group: Slice[]) => {
    try {
      const results = await ingest(group.map((g) => g.batch));
      group.forEach((g, i) => settle(g.batch.agentId, g, results[i]!));
    } catch (err) {
      if (group.length === 1) {
        fail(group[0]!.batch.agentId, err);
        return;
      }
      for (const g of group) {
        try {
          const [r] = await ingest([g.batch]);
          settle(g.batch.agentId, g, r!);
        } catch (one) {
          fail(g.batch.agentId, one);
        }
      }
    }
  };

  const isIdle = () => running === 0 && fresh.length + ready.length === 0 && deferred.size === 0;
  const checkIdle = () => {
    if (!isIdle()) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const w of waiters) w();
  };

  const pump = () => {
    while (running < concurrency && fresh.length + ready.length > 0) {
      const group: Slice[] = [];
      let size = 0;
      // Every agent with work queued (waiting or being committed) gets a share of a group that can hold them all.
      const share = Math.max(minSlice, Math.min(agentSlice, Math.floor(groupMax / jobs.size)));
      while (size < groupMax && fresh.length + ready.length > 0) {
        const agentId = (fresh.length ? fresh : ready).shift()!;
        const list = jobs.get(agentId);
        if (!list?.length) continue;
        const slice = sliceOf(agentId, list, share);
        group.push(slice);
        busy.add(agentId);
        size += Math.max(1, slice.size);
      }
      if (!group.length) break;
      running++;
      void commit(group).finally(() => {
        running--;
        for (const g of group) {
          const id = g.batch.agentId;
          busy.delete(id);
          if (deferred.has(id)) {
            setTimeout(() => {
              deferred.delete(id);
              if (jobs.has(id) && !busy.has(id)) ready.push(id);
              pump();
              checkIdle();
            }, lockedRetryMs);
            continue;
          }
          // Back of the line: everyone waiting goes before this agent's next slice.
          if (jobs.has(id)) ready.push(id);
        }
        pump();
        checkIdle();
      });
    }
  };

  return {
    submit(batch) {
      return new Promise<IngestResult>((resolve, reject) => {
        const items: Item[] = [...batch.deltas.map((delta) => ({ delta })), ...batch.refusals.map((refusal) => ({ refusal }))].sort((a, b) => seqOf(a) - seqOf(b));
        const job: Job = { batch, items, next: 0, committedSeq: 0, stored: [], alerts: [], refused: [], resolve, reject };
        pending += items.length;
        const list = jobs.get(batch.agentId);
        if (list) {
          list.push(job);
          return;
        }
        jobs.set(batch.agentId, [job]);
        // An agent that had nothing queued goes first (a "new flow", as in fq_codel): a quiet
        // host's delta is in the next group commit; agents just served go to the back.
        if (!busy.has(batch.agentId)) fresh.push(batch.agentId);
        pump();
      });
    },
    stats: () => ({ agents: jobs.size, pending, running }),
    idle() {
      if (isIdle()) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
  };
}
