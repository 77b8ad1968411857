import type { ChangeKind } from '../../core/model.js';
import type { Clock } from './clock.js';
import { buf, date, num, type SqlQueryable } from './sql.js';

/** An unsent alert with the event it is about, as the outbox table and file_events hold them. */
export interface OutboxRow {
  readonly id: number;
  readonly agentId: string;
  /** '' when the agent row is gone. */
  readonly hostname: string;
  readonly rule: string;
  readonly seq: number;
  readonly kind: ChangeKind;
  readonly path: Buffer;
  readonly sha256: Buffer | null;
  readonly detectedAt: Date;
}

/** The alert outbox: alerts are written with their events (event-store.ts) and marked once notified. */
export interface AlertStore {
  markNotified(id: number): Promise<void>;
  /**
   * Claims up to `limit` alerts created before `createdBefore` and not notified yet, for
   * `leaseMs` (so two replicas do not send the same one), oldest first.
   */
  claimPending(createdBefore: Date, leaseMs: number, limit: number): Promise<OutboxRow[]>;
}

export function createAlertStore(db: SqlQueryable, clock: Clock): AlertStore {
  return {
    async markNotified(id) {
      await db.query('update alerts set notified_at = $2 where id = $1', [id, clock()]);
    },
    async claimPending(createdBefore, leaseMs, limit) {
      const now = clock();
      const rows = await db.query(
        `with claimed as (
           update alerts set claimed_until = $3
            where id in (select id from alerts
                          where notified_at is null and created_at < $1 and (claimed_until is null or claimed_until < $2)
                          order by id limit $4 for update skip locked)
           returning id, agent_id, seq, rule)
         select c.id, c.agent_id, c.seq, c.rule, e.kind, e.path, e.sha256, e.detected_at, coalesce(a.hostname, '') as hostname
           from claimed c
           join file_events e on e.agent_id = c.agent_id and e.seq = c.seq
           left join agents a on a.id = c.agent_id
          order by c.id`,
        [createdBefore, now, new Date(now.getTime() + leaseMs), limit],
      );
      return rows.map((r) => ({
        id: num(r.id),
        agentId: r.agent_id as string,
        hostname: r.hostname as string,
        rule: r.rule as string,
        seq: num(r.seq),
        kind: r.kind as ChangeKind,
        path: buf(r.path)!,
        sha256: buf(r.sha256),
        detectedAt: date(r.detected_at)!,
      }));
    },
  };
}
