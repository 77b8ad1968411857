import type { Logger } from 'pino';
import type { AgentMeta } from '../store/agent-meta.js';
import type { Outbox } from '../store/outbox.js';
import type { StatusReport } from '../transport/stream-messages.js';

/** Scheduled-only directories sent at most (the count is sent whole): past a watch limit there may be thousands. */
export const MAX_SCHEDULED_ONLY = 50;

/** The agent's delivery and watch status now: the resync flag, the queue, gap records, unwatched roots. */
export function statusReport(store: { readonly outbox: Outbox; readonly meta: AgentMeta }, scheduledOnly: readonly string[]): StatusReport {
  const gaps = store.meta.gaps();
  return {
    resync: store.outbox.resync(),
    queueLength: store.outbox.length(),
    queueBytes: store.outbox.bytes(),
    queueLimitBytes: store.outbox.limitBytes(),
    gaps: gaps.recent,
    gapsTotal: gaps.total,
    scheduledOnly: scheduledOnly.slice(0, MAX_SCHEDULED_ONLY),
    scheduledOnlyTotal: scheduledOnly.length,
    lastReconcile: store.meta.lastReconcile(),
  };
}

/** Sends the status when it differs from the last one sent on this stream. */
export interface StatusReporter {
  report(): void;
  /** Deltas were queued: says so when the queue went into or out of resync. */
  queued(): void;
}

export function createStatusReporter(opts: {
  readonly store: { readonly outbox: Outbox; readonly meta: AgentMeta };
  readonly scheduledOnly: () => readonly string[];
  readonly send: (s: StatusReport) => void;
  readonly logger: Logger;
}): StatusReporter {
  let sent = '';
  let resyncShown = opts.store.outbox.resync() !== null;
  const report = () => {
    const status = statusReport(opts.store, opts.scheduledOnly());
    const key = JSON.stringify(status);
    if (key === sent) return;
    sent = key;
    opts.send(status);
  };
  return {
    report,
    queued() {
      const resync = opts.store.outbox.resync() !== null;
      if (resync === resyncShown) return;
      resyncShown = resync;
      if (resync) opts.logger.warn({ queueBytes: opts.store.outbox.bytes(), limit: opts.store.outbox.limitBytes() }, 'queue full: recording changes locally, will reconcile once delivered');
      report();
    },
  };
}
