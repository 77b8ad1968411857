import type { Clock } from './clock.js';
import type { SqlQueryable } from './sql.js';

/** Operators whose credentials were revoked; checked on every admin RPC. */
export interface OperatorStore {
  revoke(spiffeId: string, by: string, reason: string): Promise<boolean>;
  isRevoked(spiffeId: string): Promise<boolean>;
}

export function createOperatorStore(db: SqlQueryable, clock: Clock): OperatorStore {
  return {
    async revoke(spiffeId, by, reason) {
      const rows = await db.query(
        'insert into revoked_operators (spiffe_id, revoked_at, revoked_by, reason) values ($1, $2, $3, $4) on conflict do nothing returning spiffe_id',
        [spiffeId, clock(), by, reason],
      );
      await db.query("update certificates set revoked_at = $2 where subject = $1 and kind = 'operator' and revoked_at is null", [spiffeId, clock()]);
      return rows.length > 0;
    },
    async isRevoked(spiffeId) {
      return (await db.query('select 1 from revoked_operators where spiffe_id = $1', [spiffeId])).length > 0;
    },
  };
}
