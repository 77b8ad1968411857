/**
 * Jobs run one at a time, in the order they were queued: everything that touches the baseline
 * goes through one queue, so sequence numbers follow the disk. A job that fails does not stop the
 * next.
 */
export interface SerialWork {
  /** Queues fn after every job queued before it; settles as fn does. */
  run<T>(fn: () => Promise<T>): Promise<T>;
  /** How many jobs have started so far. */
  started(): number;
  /** True while a job runs or waits its turn. */
  busy(): boolean;
}

export function createSerialWork(): SerialWork {
  let chain: Promise<unknown> = Promise.resolve();
  let started = 0;
  let waiting = 0;
  return {
    run<T>(fn: () => Promise<T>): Promise<T> {
      waiting++;
      const start = () => {
        started++;
        return fn();
      };
      const next = chain.then(start, start);
      chain = next.catch(() => undefined).finally(() => waiting--);
      return next;
    },
    started: () => started,
    busy: () => waiting > 0,
  };
}
