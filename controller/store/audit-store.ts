import type { Clock } from './clock.js';
import { date, type SqlQueryable } from './sql.js';

export interface AuditEntry {
  readonly at: Date;
  readonly actor: string;
  readonly action: string;
  readonly target: string;
  readonly details: Record<string, unknown>;
}

/** Who changed what, when: every operator change is recorded. Details never hold secrets. */
export interface AuditStore {
  record(e: Omit<AuditEntry, 'at'>): Promise<void>;
  /** The newest `limit` entries (at or after `since`), oldest first; `more`: older ones match too. */
  list(opts?: { limit?: number; since?: Date }): Promise<{ readonly entries: AuditEntry[]; readonly more: boolean }>;
}

export function createAuditStore(db: SqlQueryable, clock: Clock): AuditStore {
  return {
    async record({ actor, action, target, details }) {
      await db.query('insert into audit_log (at, actor, action, target, details) values ($1, $2, $3, $4, $5)', [
        clock(),
        actor,
        action,
        target,
        JSON.stringify(details),
      ]);
    },
    async list({ limit = 1000, since } = {}) {
      const rows = await db.query(
        `select * from (select * from audit_log ${since ? 'where at >= $2' : ''} order by id desc limit $1) t order by id`,
        since ? [limit + 1, since] : [limit + 1],
      );
      const more = rows.length > limit;
      const entries = (more ? rows.slice(1) : rows).map((r) => ({
        at: date(r.at)!,
        actor: r.actor as string,
        action: r.action as string,
        target: r.target as string,
        details: r.details as Record<string, unknown>,
      }));
      return { entries, more };
    },
  };
}
