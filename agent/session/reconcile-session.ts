import type { Logger } from 'pino';
import type { Policy } from '../../core/model.js';
import { createRuleMatcher } from '../../core/policy-match.js';
import type { Leaf, RangeCompare, Repairs, Verdict } from '../../core/sync-types.js';
import { AGENT_BATCH_BYTES } from '../../proto/wire-limits.js';
import type { Baseline } from '../store/baseline.js';
import type { AgentMeta } from '../store/agent-meta.js';
import type { Change } from '../store/journal.js';
import type { Outbox } from '../store/outbox.js';
import { reconcile, SyncMessageTooLarge, type SyncChannel } from '../sync/reconciler.js';
import { createExchanges } from '../transport/exchanges.js';
import type { UpMessage } from '../transport/stream-messages.js';

/**
 * Reconciliation on one stream (docs/delivery.md): on connect, periodically, and once a queue that
 * overflowed is delivered. One runs at a time; a request during a run starts another after it.
 */
export interface ReconcileSession {
  start(why: string): void;
  verdicts(exchangeId: bigint, verdicts: readonly Verdict[]): boolean;
  repairs(exchangeId: bigint, repairs: Repairs): boolean;
  /** The stream ended: exchanges still waiting fail, the periodic run stops. */
  end(): void;
}

export interface ReconcileSessionOptions {
  readonly store: { readonly baseline: Baseline; readonly outbox: Outbox; readonly meta: AgentMeta };
  /** The policy in force (an extra path it does not cover is dropped quietly). */
  readonly policy: () => Policy | null;
  /** The monitor's serial path (see ReconcilerOptions.recordRepairs). */
  readonly recordRepairs: (repairs: () => Change[]) => Promise<number>;
  readonly send: (m: UpMessage) => void;
  /** Resolves once every recorded delta is on the wire (the precondition of each exchange). */
  readonly allSent: () => Promise<void>;
  /** After a run: the status changed (last reconcile). */
  readonly onDone: () => void;
  readonly everyMs: number;
  readonly clock: () => Date;
  readonly logger: Logger;
}

export function createReconcileSession(opts: ReconcileSessionOptions): ReconcileSession {
  const log = opts.logger;
  const verdicts = createExchanges<readonly Verdict[]>();
  const repairs = createExchanges<Repairs>();
  let ended = false;
  let running = false;
  let again: string | null = null;

  // Each exchange goes out once every delta recorded before it has been sent, built in the same
  // tick, so both sides compare the same prefix.
  const channel: SyncChannel = {
    async compareRanges(build) {
      await opts.allSent();
      const ex = verdicts.open();
      const ranges: RangeCompare[] = build();
      opts.send({ type: 'syncRanges', exchangeId: ex.id, ranges });
      return [...(await ex.answer)];
    },
    async compareEntries(build) {
      await opts.allSent();
      const leaves: Leaf[] = build();
      const bytes = leaves.reduce((n, l) => n + 48 + l.entries.reduce((m, e) => m + 24 + e.path.length, 0), 0);
      if (bytes > AGENT_BATCH_BYTES) throw new SyncMessageTooLarge(`${leaves.length} leaves take about ${bytes} bytes`);
      const ex = repairs.open();
      opts.send({ type: 'syncEntries', exchangeId: ex.id, leaves });
      return ex.answer;
    },
  };

  const start = (why: string) => {
    if (ended) return;
    if (running) {
      again = why; // once this one is done: it may have started before what asks now
      return;
    }
    const { outbox } = opts.store;
    if (outbox.resync()) {
      if (outbox.length() > 0) return; // once the queue is delivered
      outbox.clearResync();
      log.info('queue delivered; queueing again and reconciling what it could not hold');
    }
    running = true;
    const match = createRuleMatcher(opts.policy()?.rules ?? []);
    const started = Date.now();
    reconcile(channel, { baseline: opts.store.baseline, recordRepairs: opts.recordRepairs, covers: (path) => match(path) !== null, clock: opts.clock, logger: log })
      .then((r) => {
        opts.store.meta.setLastReconcile({ at: opts.clock(), repairs: r.repairs });
        log.info({ why, repairs: r.repairs, ranges: r.ranges, leaves: r.leaves, ms: Date.now() - started }, 'reconciled with the controller');
        opts.onDone();
      })
      .catch((err: unknown) => {
        if (!ended) log.warn({ err, why }, 'reconciliation failed; it runs again on the next connect');
      })
      .finally(() => {
        running = false;
        const next = again;
        again = null;
        if (next) start(next);
      });
  };
  const timer = setInterval(() => start('periodic'), opts.everyMs);
  timer.unref();

  return {
    start,
    verdicts: (id, v) => verdicts.settle(id, v),
    repairs: (id, r) => repairs.settle(id, r),
    end() {
      ended = true;
      clearInterval(timer);
      const gone = new Error('the stream ended');
      verdicts.failAll(gone);
      repairs.failAll(gone);
    },
  };
}
