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
   * 250; less while many agents wait (the groups that can run at once are shared among them:
   * groupMax × concurrency / agents waiting), but never under minSlice.
   */
  readonly agentSlice?: number;
  /** Least of one agent's deltas a group commit takes when it has them. Default 25. */
  readonly minSlice?: number;
  /** How long an agent whose row was locked elsewhere waits before it is offered again. Default 25 ms. */
  readonly lockedRetryMs?: number;
  /**
   * The express lane: one more group commit, at most this many deltas, of sparse flows only
   * (agents with no more than minSlice queued: a quiet host's delta), so such an agent waits for
   * one small commit instead of for a fleet's big ones. 0 turns it off. Default 100.
   */
  readonly expressMax?: number;
}

export const INGEST_DEFAULTS = { concurrency: 3, groupMax: 2000, agentSlice: 250, minSlice: 25, lockedRetryMs: 25, expressMax: 100 } as const;

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

/** What one group commit takes of one batch: the next deltas and refusals, a run of rising seqs. */
interface SlicePart {
  readonly job: Job;
  readonly deltas: number;
  readonly refusals: number;
  /** The seqs taken run from lo to hi (both included); the slice's other parts lie outside. */
  readonly lo: number;
  readonly hi: number;
}

/** One agent's share of a group commit: the front of its queued batches. */
interface Slice {
  readonly batch: IngestBatch;
  readonly parts: readonly SlicePart[];
  readonly size: number;
}

const bySeq = (a: { readonly seq: number }, b: { readonly seq: number }) => a.seq - b.seq;
/** The list itself when it is in seq order already (an agent sends its seqs rising), else a sorted copy. */
function inSeqOrder<T extends { readonly seq: number }>(list: readonly T[]): readonly T[] {
  for (let i = 1; i < list.length; i++) if (list[i]!.seq < list[i - 1]!.seq) return [...list].sort(bySeq);
  return list;
}

interface Job {
  readonly batch: IngestBatch;
  /** Deltas and refusals, each in seq order: committed front to back, the two merged by seq. */
  readonly deltas: readonly FileDelta[];
  readonly refusals: readonly DeltaRefusal[];
  /** How many of each are committed. */
  nextDelta: number;
  nextRefusal: number;
  committedSeq: number;
  readonly stored: FileDelta[];
  readonly alerts: NewAlert[];
  readonly refused: DeltaRefusal[];
  resolve(r: IngestResult): void;
  reject(err: unknown): void;
}

const left = (job: Job) => job.deltas.length - job.nextDelta + job.refusals.length - job.nextRefusal;

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
  const expressMax = options.expressMax ?? INGEST_DEFAULTS.expressMax;
  for (const [name, v] of Object.entries({ concurrency, groupMax, agentSlice, minSlice, lockedRetryMs })) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`ingest ${name} must be a whole number of at least 1`);
  }
  if (!Number.isInteger(expressMax) || expressMax < 0) throw new RangeError('ingest expressMax must be a whole number of at least 0');
  const jobs = new Map<string, Job[]>();
  // Agents with a job and no slice being committed, in turn order: sparse flows (served first:
  // those that had nothing queued before, and those holding no more than minSlice when their last
  // slice was committed, a quiet host's few deltas), then those served before, at the back of the
  // line again.
  const fresh: string[] = [];
  const ready: string[] = [];
  const busy = new Set<string>();
  /** Agents whose row was locked by another transaction: offered again after lockedRetryMs. */
  const deferred = new Set<string>();
  let running = 0;
  let expressRunning = false;
  let pending = 0;
  let idleWaiters: (() => void)[] = [];
  /** Deltas and refusals the agent has queued, not committed. */
  const queuedOf = (agentId: string) => jobs.get(agentId)?.reduce((n, j) => n + left(j), 0) ?? 0;
  /** A sparse flow: a quiet host's few deltas (no more than minSlice queued). */
  const sparse = (agentId: string) => queuedOf(agentId) <= minSlice;

  /** Ends every queued batch of the agent (revoked, or its stream is to fail). */
  const drop = (agentId: string, end: (job: Job) => void) => {
    for (const job of jobs.get(agentId) ?? []) {
      pending -= left(job);
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
    for (const { job, deltas, refusals, lo, hi } of slice.parts) {
      job.nextDelta += deltas;
      job.nextRefusal += refusals;
      pending -= deltas + refusals;
      // Every seq up to the agent's committed one is in Postgres: an earlier batch may say so.
      job.committedSeq = Math.max(job.committedSeq, r.committedSeq);
      // A slice of one batch (the common case) takes the whole result as it is.
      const mine = <T extends { readonly seq: number }>(list: readonly T[]) => (slice.parts.length === 1 ? list : list.filter((x) => x.seq >= lo && x.seq <= hi));
      for (const d of mine(r.stored)) job.stored.push(d);
      for (const a of mine(r.alerts)) job.alerts.push(a);
      for (const x of mine(r.refused)) job.refused.push(x);
      if (left(job) > 0) return;
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
      let d = job.nextDelta;
      let r = job.nextRefusal;
      const first = Math.min(job.deltas[d]?.seq ?? Infinity, job.refusals[r]?.seq ?? Infinity);
      if (first !== Infinity && first <= last) break;
      // The next `room` items in seq order: deltas and refusals merged.
      let hi = last;
      if (r === job.refusals.length) {
        const end = Math.min(job.deltas.length, d + room);
        for (; d < end; d++) deltas.push(job.deltas[d]!);
        if (end > job.nextDelta) hi = job.deltas[end - 1]!.seq;
      } else {
        for (let n = 0; n < room && (d < job.deltas.length || r < job.refusals.length); n++) {
          const takeDelta = r >= job.refusals.length || (d < job.deltas.length && job.deltas[d]!.seq < job.refusals[r]!.seq);
          if (takeDelta) {
            hi = job.deltas[d]!.seq;
            deltas.push(job.deltas[d++]!);
          } else {
            hi = job.refusals[r]!.seq;
            refusals.push(job.refusals[r++]!);
          }
        }
      }
      const taken = d - job.nextDelta + r - job.nextRefusal;
      parts.push({ job, deltas: d - job.nextDelta, refusals: r - job.nextRefusal, lo: first, hi });
      room -= taken;
      if (taken) last = hi;
      // A batch not taken whole, or no room left: the slice ends here.
      if (d < job.deltas.length || r < job.refusals.length || room <= 0) break;
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

  /**
   * Takes a group from the agents in line (the first line first), each a slice of `share`, up to
   * `max` items; agents `take` refuses keep their place.
   */
  const takeGroup = (lines: readonly string[][], share: number, max: number, take?: (agentId: string) => boolean): Slice[] => {
    const group: Slice[] = [];
    let size = 0;
    for (const line of lines) {
      for (let i = 0; size < max && i < line.length; ) {
        const agentId = line[i]!;
        const list = jobs.get(agentId);
        if (list?.length && take && !take(agentId)) {
          i++;
          continue;
        }
        line.splice(i, 1);
        if (!list?.length) continue;
        const slice = sliceOf(agentId, list, Math.min(share, max - size));
        group.push(slice);
        busy.add(agentId);
        size += Math.max(1, slice.size);
      }
    }
    return group;
  };

  /**
   * An agent served before goes to the back of the line, unless what it has queued is a sparse
   * flow's, which goes first. (So every sparse flow is in `fresh`: an agent in `ready` only gains
   * deltas until it is served.)
   */
  const lineUp = (agentId: string) => (sparse(agentId) ? fresh : ready).push(agentId);

  const start = (group: Slice[], express: boolean) => {
    running++;
    if (express) expressRunning = true;
    void commit(group).finally(() => {
      running--;
      if (express) expressRunning = false;
      for (const g of group) {
        const id = g.batch.agentId;
        busy.delete(id);
        if (deferred.has(id)) {
          setTimeout(() => {
            deferred.delete(id);
            if (jobs.has(id) && !busy.has(id)) lineUp(id);
            pump();
            checkIdle();
          }, lockedRetryMs);
          continue;
        }
        // Back of the line: everyone waiting goes before this agent's next slice; unless what it
        // has queued is a sparse flow's few deltas, which go first (a quiet host that sent again
        // while its last delta was committed is not put behind a fleet's burst).
        if (jobs.has(id)) lineUp(id);
      }
      pump();
      checkIdle();
    });
  };

  const pump = () => {
    // The express lane: one small group at a time, of sparse flows only, whatever the other
    // groups are doing, so a quiet host waits for one small commit, not for a fleet's big ones.
    if (expressMax > 0 && !expressRunning) {
      const group = takeGroup([fresh], minSlice, expressMax, sparse);
      if (group.length) start(group, true);
    }
    // Sparse flows wait for the express lane (it is quick) while one express group can take them
    // all; more of them (a fleet of quiet hosts sending at once) go in the other groups too.
    let sparseWaiting = 0;
    if (expressMax > 0) for (const id of fresh) if (sparse(id) && (sparseWaiting += queuedOf(id)) > expressMax) break;
    const take = expressMax > 0 && sparseWaiting <= expressMax ? (id: string) => !sparse(id) : undefined;
    while (running - (expressRunning ? 1 : 0) < concurrency && fresh.length + ready.length > 0) {
      // Every agent with work queued (waiting or being committed) gets a share of the group commits
      // that can run at once: together they hold them all. (A share of one group would make each
      // group hold only the agents the other running groups do not, groupMax / concurrency deltas.)
      const share = Math.max(minSlice, Math.min(agentSlice, Math.floor((groupMax * concurrency) / jobs.size)));
      const group = takeGroup([fresh, ready], share, groupMax, take);
      if (!group.length) break;
      start(group, false);
    }
  };

  return {
    submit(batch) {
      return new Promise<IngestResult>((resolve, reject) => {
        const job: Job = { batch, deltas: inSeqOrder(batch.deltas), refusals: inSeqOrder(batch.refusals), nextDelta: 0, nextRefusal: 0, committedSeq: 0, stored: [], alerts: [], refused: [], resolve, reject };
        pending += left(job);
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
