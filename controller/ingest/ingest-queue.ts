import type { FileDelta } from '../../core/model.js';
import type { DeltaRefusal, IngestBatch, IngestResult, NewAlert } from '../store/index.js';

/** How the ingest queue shares Postgres between agents (docs/architecture.md, "Ingest"). */
export interface IngestQueueOptions {
  /** Group commits running at once (each holds one pooled connection). Default 3. */
  readonly concurrency?: number;
  /** Most deltas and refusals in one group commit. Default 2,000. */
  readonly groupMax?: number;
  /** Most of one agent's deltas in one group commit: a big batch is committed in slices. Default 250. */
  readonly agentSlice?: number;
  /** How long an agent whose row was locked elsewhere waits before it is offered again. Default 25 ms. */
  readonly lockedRetryMs?: number;
}

export const INGEST_DEFAULTS = { concurrency: 3, groupMax: 2000, agentSlice: 250, lockedRetryMs: 25 } as const;

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
 * takes at most `agentSlice` items from each waiting agent in round-robin order until it holds
 * `groupMax`, so a fleet-wide burst cannot make one quiet agent wait behind everyone's whole
 * batches. The queue is bounded by the streams: a stream hands over its next batch only after the
 * previous one was acked, so HTTP/2 flow control holds back an agent whose batches wait here.
 * A group that fails is retried one agent at a time, so one agent's bad batch fails only its own.
 */
export function createIngestQueue(ingest: (batches: readonly IngestBatch[]) => Promise<(IngestResult | null)[]>, options: IngestQueueOptions = {}): IngestQueue {
  const concurrency = options.concurrency ?? INGEST_DEFAULTS.concurrency;
  const groupMax = options.groupMax ?? INGEST_DEFAULTS.groupMax;
  const agentSlice = options.agentSlice ?? INGEST_DEFAULTS.agentSlice;
  const lockedRetryMs = options.lockedRetryMs ?? INGEST_DEFAULTS.lockedRetryMs;
  for (const [name, v] of Object.entries({ concurrency, groupMax, agentSlice, lockedRetryMs })) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`ingest ${name} must be a whole number of at least 1`);
  }
  const jobs = new Map<string, Job[]>();
  /** Agents with a job and no slice being committed, in turn order. */
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

  const settle = (agentId: string, job: Job, taken: number, r: IngestResult | null) => {
    if (r === null) {
      deferred.add(agentId);
      return;
    }
    job.next += taken;
    pending -= taken;
    // Nothing more of a revoked agent is stored: this batch and every queued one end here.
    if (r.revoked) return drop(agentId, (j) => j.resolve(r));
    job.committedSeq = Math.max(job.committedSeq, r.committedSeq);
    job.stored.push(...r.stored);
    job.alerts.push(...r.alerts);
    job.refused.push(...r.refused);
    if (job.next < job.items.length) return;
    const list = jobs.get(agentId)!;
    list.shift();
    if (list.length === 0) jobs.delete(agentId);
    job.resolve({ revoked: false, committedSeq: job.committedSeq, stored: job.stored, alerts: job.alerts, refused: job.refused });
  };

  // The agent's stream ends; the agent resends from its last ack, and resends are harmless.
  const fail = (agentId: string, err: unknown) => drop(agentId, (j) => j.reject(err));

  const sliceOf = (job: Job): { batch: IngestBatch; taken: number } => {
    const items = job.items.slice(job.next, job.next + agentSlice);
    const deltas: FileDelta[] = [];
    const refusals: DeltaRefusal[] = [];
    for (const i of items) {
      if ('delta' in i) deltas.push(i.delta);
      else refusals.push(i.refusal);
    }
    return { batch: { agentId: job.batch.agentId, deltas, refusals, alertRuleFor: job.batch.alertRuleFor }, taken: items.length };
  };

  const commit = async (group: { batch: IngestBatch; taken: number; job: Job }[]) => {
    try {
      const results = await ingest(group.map((g) => g.batch));
      group.forEach((g, i) => settle(g.batch.agentId, g.job, g.taken, results[i]!));
    } catch (err) {
      if (group.length === 1) {
        fail(group[0]!.batch.agentId, err);
        return;
      }
      for (const g of group) {
        try {
          const [r] = await ingest([g.batch]);
          settle(g.batch.agentId, g.job, g.taken, r!);
        } catch (one) {
          fail(g.batch.agentId, one);
        }
      }
    }
  };

  const isIdle = () => running === 0 && ready.length === 0 && deferred.size === 0;
  const checkIdle = () => {
    if (!isIdle()) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const w of waiters) w();
  };

  const pump = () => {
    while (running < concurrency && ready.length > 0) {
      const group: { batch: IngestBatch; taken: number; job: Job }[] = [];
      let size = 0;
      while (size < groupMax && ready.length > 0) {
        const agentId = ready.shift()!;
        const job = jobs.get(agentId)?.[0];
        if (!job) continue;
        const slice = sliceOf(job);
        group.push({ ...slice, job });
        busy.add(agentId);
        size += Math.max(1, slice.taken);
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
        if (!busy.has(batch.agentId)) ready.push(batch.agentId);
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
