import type { SqlQueryable } from '../store/index.js';

const num = (v: unknown) => Number(v ?? 0);

/**
 * Open work the metrics show, in one statement: commands pending and delivered (the partial index
 * `commands_open`) and alerts not sent (`alerts_pending`). Both indexes hold open rows only, so the
 * read costs the backlog's size, not the history's.
 */
export async function readBacklog(sql: SqlQueryable): Promise<{ commandsPending: number; commandsDelivered: number; alertsPending: number }> {
  const [row] = await sql.query(
    `select (select count(*) from commands where state = 'pending') as pending,
            (select count(*) from commands where state = 'delivered') as delivered,
            (select count(*) from alerts where notified_at is null) as alerts`,
  );
  return { commandsPending: num(row?.pending), commandsDelivered: num(row?.delivered), alertsPending: num(row?.alerts) };
}
