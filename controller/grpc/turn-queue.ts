/**
 * Hands out event-loop turns one at a time: each waiter resumes in a turn of its own, with the
 * loop's I/O polled between two of them. For CPU work that arrives in floods (the first delta
 * messages of a hundred hosts starting a burst at once): done one piece a turn, a quiet host's
 * message and the database's answers are read between pieces instead of after all of them.
 */
export interface TurnQueue {
  /** Resolves in the next free turn of the event loop, after those who waited before. */
  wait(): Promise<void>;
  /** Waiters not resumed yet. */
  readonly waiting: number;
}

export function createTurnQueue(): TurnQueue {
  const waiters: (() => void)[] = [];
  let scheduled = false;
  // An immediate set from an immediate runs in the loop's next turn, after its I/O poll.
  const turn = () => {
    waiters.shift()?.();
    if (waiters.length) setImmediate(turn);
    else scheduled = false;
  };
  return {
    wait: () =>
      new Promise<void>((resolve) => {
        waiters.push(resolve);
        if (!scheduled) {
          scheduled = true;
          setImmediate(turn);
        }
      }),
    get waiting() {
      return waiters.length;
    },
  };
}
