/** How many delta messages of one stream may be in the ingest queue at once. */
export interface DeltaPipelineLimits {
  /** Messages read ahead of the oldest unacked one, at most. Default 16. */
  readonly maxBatches: number;
  /** Their deltas together, at most (a message larger than this is still taken alone). Default 1,000. */
  readonly maxDeltas: number;
  /** Read ahead only while the whole ingest queue holds fewer deltas than this. Default 50,000. */
  readonly maxQueued: number;
  /**
   * A stream whose read-ahead would hold at most this many deltas reads on even when the whole
   * queue is full: a quiet host sending a delta at a time is not held to one commit per delta
   * behind a fleet's burst (its deltas wait in its stream, and their ack latency grows with the
   * burst). Bounds what the queue may hold beyond maxQueued: this many per stream. Default 32.
   */
  readonly smallFlow: number;
}

export const DELTA_PIPELINE_DEFAULTS: DeltaPipelineLimits = { maxBatches: 16, maxDeltas: 1000, maxQueued: 50_000, smallFlow: 32 };

/**
 * The delta messages of one stream between being read and being acked. A stream's next message is
 * read while earlier ones wait for their commit, within the limits, so an agent that sends a
 * delta at a time (a quiet host) has them committed together instead of one per group commit;
 * past the limits nothing more is read, and HTTP/2 flow control holds the agent back. The first
 * failure ends the stream.
 */
export interface DeltaPipeline {
  /** Resolves when a message of n deltas may be taken in; rejects with the first failure. */
  room(n: number): Promise<void>;
  /** Tracks one message's commit and ack. */
  add(work: Promise<void>, n: number): void;
  /** Resolves when everything added has been acked; rejects with the first failure. */
  drain(): Promise<void>;
}

export function createDeltaPipeline(queued: () => number, limits: DeltaPipelineLimits = DELTA_PIPELINE_DEFAULTS): DeltaPipeline {
  let batches = 0;
  let deltas = 0;
  let failure: { err: unknown } | null = null;
  let waiters: (() => void)[] = [];
  const wake = () => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  const wait = async (ready: () => boolean) => {
    for (;;) {
      if (failure) throw failure.err;
      if (ready()) return;
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  };
  return {
    room: (n) => wait(() => batches === 0 || (batches < limits.maxBatches && deltas + n <= limits.maxDeltas && (deltas + n <= limits.smallFlow || queued() + n <= limits.maxQueued))),
    add(work, n) {
      batches++;
      deltas += n;
      work.then(
        () => {
          batches--;
          deltas -= n;
          wake();
        },
        (err: unknown) => {
          failure ??= { err };
          wake();
        },
      );
    },
    drain: () => wait(() => batches === 0),
  };
}
