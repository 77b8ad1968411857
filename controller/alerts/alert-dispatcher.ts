import type { Logger } from 'pino';
import type { AlertStore } from '../store/index.js';
import type { Alert, Notifier } from './notifier.js';

/**
 * Sends alerts after their transaction committed, one at a time in order, and marks each
 * notified. A failed send stays unmarked in the outbox (alerts.notified_at is null).
 */
export interface AlertDispatcher {
  enqueue(alerts: readonly Alert[]): void;
  /**
   * Sends what the outbox still holds from before `graceMs` ago: alerts whose send failed, or
   * whose controller stopped between commit and send. Run at start-up and periodically.
   */
  sweep(graceMs: number): Promise<number>;
  /** Resolves when everything enqueued so far was handled. */
  idle(): Promise<void>;
}

export function createAlertDispatcher(notifier: Notifier, store: AlertStore, logger: Logger, clock: () => Date = () => new Date()): AlertDispatcher {
  let chain: Promise<void> = Promise.resolve();
  return {
    enqueue(alerts) {
      for (const alert of alerts) {
        chain = chain.then(async () => {
          try {
            await notifier.notify(alert);
            await store.markNotified(alert.id);
          } catch (err) {
            logger.error({ err, alertId: alert.id, notifier: notifier.name }, 'alert notification failed; left in the outbox');
          }
        });
      }
    },
    idle: () => chain,
    async sweep(graceMs) {
      const pending = await store.claimPending(new Date(clock().getTime() - graceMs), 60_000, 500);
      this.enqueue(pending);
      return pending.length;
    },
  };
}
