import { randomUUID } from 'node:crypto';
import type { Fanout, FanoutEvent } from '../../controller/fanout.js';

/**
 * Replicas' fan-out in memory: what one replica publishes reaches every replica's subscribers
 * (its own included, with its origin), asynchronously as NOTIFY does; resync() stands for a
 * re-established listening connection on one replica.
 */
export interface FanoutBus {
  replica(): Fanout & { resync(): void };
  /** Events published so far, in order. */
  readonly published: { readonly origin: string; readonly event: FanoutEvent }[];
}

export function createFanoutBus(): FanoutBus {
  const subscribers: ((event: FanoutEvent, origin: string) => void)[] = [];
  const published: { origin: string; event: FanoutEvent }[] = [];
  return {
    published,
    replica() {
      const replicaId = randomUUID();
      const resyncers: (() => void)[] = [];
      return {
        replicaId,
        async publish(event) {
          published.push({ origin: replicaId, event });
          // Round trip through JSON, as the payload of a NOTIFY is.
          const copy = JSON.parse(JSON.stringify(event)) as FanoutEvent;
          setImmediate(() => {
            for (const fn of subscribers) fn(copy, replicaId);
          });
        },
        subscribe(fn) {
          subscribers.push(fn);
        },
        onResync(fn) {
          resyncers.push(fn);
        },
        resync() {
          for (const fn of resyncers) fn();
        },
        async close() {},
      };
    },
  };
}
