import type { Clock } from './clock.js';
import type { SqlQueryable } from './sql.js';

/** The alert outbox: alerts are written with their events and marked once notified. */
export interface AlertStore {
  markNotified(id: number): Promise<void>;
}

export function createAlertStore(db: SqlQueryable, clock: Clock): AlertStore {
  return {
    async markNotified(id) {
      await db.query('update alerts set notified_at = $2 where id = $1', [id, clock()]);
    },
  };
}
