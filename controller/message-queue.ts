/**
 * An async-iterable queue: producers push, one consumer iterates. Used for the messages going
 * down an agent's stream, which come from several places (acks, policy pushes, commands).
 */
export interface MessageQueue<T> extends AsyncIterable<T> {
  push(item: T): boolean;
  close(): void;
  fail(err: unknown): void;
  readonly closed: boolean;
}

export function createMessageQueue<T>(): MessageQueue<T> {
  const items: T[] = [];
  let waiter: (() => void) | null = null;
  let closed = false;
  let failure: { err: unknown } | null = null;
  const wake = () => {
    const w = waiter;
    waiter = null;
    w?.();
  };
  return {
    get closed() {
      return closed;
    },
    push(item) {
      if (closed) return false;
      items.push(item);
      wake();
      return true;
    },
    close() {
      closed = true;
      wake();
    },
    fail(err) {
      if (!failure) failure = { err };
      closed = true;
      wake();
    },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        if (failure) throw failure.err;
        const item = items.shift();
        if (item !== undefined) {
          yield item;
          continue;
        }
        if (closed) return;
        await new Promise<void>((resolve) => (waiter = resolve));
      }
    },
  };
}
