/**
 * A group commit: items submitted while a batch is being written go together in the next one, so
 * a burst costs one round trip per batch instead of one per item, and an item alone is written at
 * once (after the current turn of the event loop, with whatever else arrived in it).
 */
export interface GroupCommit<I, O> {
  /** Resolves with this item's result, or rejects with its batch's failure. */
  submit(item: I): Promise<O>;
  /** Resolves when nothing is queued or being written. */
  idle(): Promise<void>;
}

export interface GroupCommitOptions<I> {
  /** Most items in one batch. */
  readonly maxBatch: number;
  /** Items with the same key never share a batch (a later one waits for the next). */
  readonly keyOf?: (item: I) => string;
}

interface Waiting<I, O> {
  readonly item: I;
  resolve(result: O): void;
  reject(err: unknown): void;
}

/** `write` returns one result per item, in the items' order. */
export function createGroupCommit<I, O>(write: (batch: readonly I[]) => Promise<readonly O[]>, opts: GroupCommitOptions<I>): GroupCommit<I, O> {
  let queue: Waiting<I, O>[] = [];
  let writing: Promise<void> | null = null;

  const take = (): Waiting<I, O>[] => {
    if (!opts.keyOf) {
      const batch = queue.slice(0, opts.maxBatch);
      queue = queue.slice(batch.length);
      return batch;
    }
    const keys = new Set<string>();
    const batch: Waiting<I, O>[] = [];
    const later: Waiting<I, O>[] = [];
    for (const w of queue) {
      const key = opts.keyOf(w.item);
      if (batch.length < opts.maxBatch && !keys.has(key)) {
        keys.add(key);
        batch.push(w);
      } else later.push(w);
    }
    queue = later;
    return batch;
  };

  const run = async (batch: Waiting<I, O>[]) => {
    try {
      const results = await write(batch.map((w) => w.item));
      batch.forEach((w, i) => w.resolve(results[i]!));
    } catch (err) {
      for (const w of batch) w.reject(err);
    }
  };

  const pump = () => {
    if (writing || !queue.length) return;
    writing = run(take()).finally(() => {
      writing = null;
      pump();
    });
  };

  return {
    submit(item) {
      return new Promise<O>((resolve, reject) => {
        queue.push({ item, resolve, reject });
        if (queue.length === 1) setImmediate(pump);
      });
    },
    async idle() {
      while (writing || queue.length) await (writing ?? new Promise((r) => setImmediate(r)));
    },
  };
}
