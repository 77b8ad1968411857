import { randomUUID } from 'node:crypto';
import type { ScanSummary } from '../../core/scan-summary.js';
import type { Clock } from './clock.js';
import { decodeScanSummary, encodeScanSummary } from './scan-summary-codec.js';
import { date, type SqlQueryable } from './sql.js';

export interface CommandRecord {
  readonly id: string;
  readonly agentId: string;
  readonly kind: string;
  readonly createdAt: Date;
  readonly deliveredAt: Date | null;
  readonly completedAt: Date | null;
  /** The agent's scan report; null until it came. */
  readonly result: ScanSummary | null;
}

export interface CommandStore {
  get(ids: readonly string[]): Promise<CommandRecord[]>;
  create(c: { agentId: string; kind: string; args: object; createdBy: string }): Promise<string>;
  markDelivered(id: string): Promise<void>;
  complete(id: string, agentId: string, result: ScanSummary): Promise<boolean>;
}

/** Commands sent down to agents (re-scans), with when they were delivered and completed. */
export function createCommandStore(db: SqlQueryable, clock: Clock): CommandStore {
  return {
    async get(ids) {
      if (!ids.length) return [];
      const rows = await db.query('select * from commands where id = any($1::text[]) order by created_at, id', [ids]);
      return rows.map((r) => ({
        id: r.id as string,
        agentId: r.agent_id as string,
        kind: r.kind as string,
        createdAt: date(r.created_at)!,
        deliveredAt: date(r.delivered_at),
        completedAt: date(r.completed_at),
        result: r.result === null || r.result === undefined ? null : decodeScanSummary(r.result, `commands.result of ${r.id as string}`),
      }));
    },
    async create({ agentId, kind, args, createdBy }) {
      const id = randomUUID();
      await db.query('insert into commands (id, agent_id, kind, args, created_at, created_by) values ($1, $2, $3, $4, $5, $6)', [
        id,
        agentId,
        kind,
        JSON.stringify(args),
        clock(),
        createdBy,
      ]);
      return id;
    },
    async markDelivered(id) {
      await db.query('update commands set delivered_at = $2 where id = $1', [id, clock()]);
    },
    async complete(id, agentId, result) {
      // The agent id comes from the certificate: an agent can only complete its own commands.
      const rows = await db.query(
        'update commands set completed_at = $3, result = $4 where id = $1 and agent_id = $2 returning id',
        [id, agentId, clock(), JSON.stringify(encodeScanSummary(result))],
      );
      return rows.length > 0;
    },
  };
}
