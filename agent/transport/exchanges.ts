/**
 * Requests and their answers on a stream, matched by id: the agent's reconciliation exchanges.
 * When the stream ends, every exchange still waiting fails.
 */
export interface Exchanges<T> {
  /** A new id and the promise of its answer. */
  open(): { id: bigint; answer: Promise<T> };
  /** Delivers an answer; false for an id nobody waits for. */
  settle(id: bigint, value: T): boolean;
  failAll(err: Error): void;
}

export function createExchanges<T>(): Exchanges<T> {
  let next = 1n;
  const waiting = new Map<bigint, { resolve: (v: T) => void; reject: (e: Error) => void }>();
  return {
    open() {
      const id = next++;
      const answer = new Promise<T>((resolve, reject) => waiting.set(id, { resolve, reject }));
      return { id, answer };
    },
    settle(id, value) {
      const w = waiting.get(id);
      if (!w) return false;
      waiting.delete(id);
      w.resolve(value);
      return true;
    },
    failAll(err) {
      for (const w of waiting.values()) w.reject(err);
      waiting.clear();
    },
  };
}
