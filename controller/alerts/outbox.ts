import type { Logger } from 'pino';
import { displayPath, type FileDelta } from '../../core/model.js';
import type { AlertStore, Clock, NewAlert, OutboxRow } from '../store/index.js';
import type { Alert, Notifier } from './notifier.js';

/** Alerts left unsent for this long are the sweep's (a send in progress is not doubled). */
export const SWEEP_GRACE_MS = 30_000;
/** How long a sweep's claim keeps other replicas off an alert. */
const CLAIM_LEASE_MS = 60_000;
const CLAIM_LIMIT = 500;

/** What one ingest committed: the alerts it wrote to the outbox and the deltas they are about. */
export interface CommittedAlerts {
  readonly hostname: string;
  readonly alerts: readonly NewAlert[];
  readonly stored: readonly FileDelta[];
}

/**
 * The alert outbox (docs/architecture.md, "Alerts"): alert rows are written in the ingest's
 * transaction; this sends them after the commit, one at a time in order, and marks each notified.
 * A failed send stays unmarked, and the sweep sends it again later, as it does alerts whose
 * controller stopped between commit and send.
 */
export interface AlertOutbox {
  /** Sends what an ingest just committed. */
  committed(batch: CommittedAlerts): void;
  /**
   * Claims and sends what the outbox still holds from before `graceMs` ago. Run at start-up and
   * periodically; returns how many alerts it claimed.
   */
  sweep(graceMs?: number): Promise<number>;
  /** Resolves when everything handed over so far was sent or left in the outbox. */
  idle(): Promise<void>;
}

/** The one place an Alert is assembled, from an outbox row however it was read. */
export function toAlert(row: OutboxRow): Alert {
  return {
    id: row.id,
    agentId: row.agentId,
    hostname: row.hostname,
    rule: row.rule,
    seq: row.seq,
    kind: row.kind,
    path: displayPath(row.path),
    sha256: row.sha256?.toString('hex') ?? null,
    detectedAt: row.detectedAt,
  };
}

/** The rows an ingest wrote, with their events as the ingest had them (no read back). */
export function committedRows({ hostname, alerts, stored }: CommittedAlerts): OutboxRow[] {
  const bySeq = new Map(stored.map((d) => [d.seq, d]));
  return alerts.flatMap((a) => {
    const d = bySeq.get(a.seq);
    if (!d) return [];
    return [{ id: a.id, agentId: a.agentId, hostname, rule: a.rule, seq: a.seq, kind: d.kind, path: d.path, sha256: d.state?.sha256 ?? null, detectedAt: d.detectedAt }];
  });
}

export function createAlertOutbox(deps: { notifier: Notifier; store: AlertStore; logger: Logger; clock: Clock }): AlertOutbox {
  const { notifier, store, logger, clock } = deps;
  let chain: Promise<void> = Promise.resolve();
  const send = (rows: readonly OutboxRow[]) => {
    for (const row of rows) {
      const alert = toAlert(row);
      chain = chain.then(async () => {
        try {
          await notifier.notify(alert);
          await store.markNotified(alert.id);
        } catch (err) {
          logger.error({ err, alertId: alert.id, notifier: notifier.name }, 'alert notification failed; left in the outbox');
        }
      });
    }
  };
  return {
    committed: (batch) => send(committedRows(batch)),
    idle: () => chain,
    async sweep(graceMs = SWEEP_GRACE_MS) {
      const pending = await store.claimPending(new Date(clock().getTime() - graceMs), CLAIM_LEASE_MS, CLAIM_LIMIT);
      send(pending);
      return pending.length;
    },
  };
}
