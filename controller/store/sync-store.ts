import { entryDigest, pathPosition, type PositionRange, type RangeDigest } from '../../core/sync-digest.js';
import { buf, num, type Sql } from './sql.js';
import { SELECT_STATE_COLUMNS, stateFromRow } from './state-row.js';

/**
 * The controller's side of reconciliation (docs/delivery.md): digests of an agent's current state
 * (file_state) over position ranges, and the entries of a range, to compare with the agent's.
 */
export interface SyncStore {
  /** Per range, in order: how many paths the agent has there and the XOR of their entry digests. */
  rangeDigests(agentId: string, ranges: readonly PositionRange[]): Promise<RangeDigest[]>;
  /** Per range, in order: the paths in it with their entry digests. */
  entriesIn(agentId: string, ranges: readonly PositionRange[]): Promise<{ path: Buffer; digest: bigint }[][]>;
}

const FILL_BATCH = 1000;

export function createSyncStore(sql: Sql): SyncStore {
  /**
   * Rows written before the digests existed (migration 6) get them now, a batch at a time; every
   * upsert since sets them.
   */
  async function fillMissing(agentId: string): Promise<void> {
    for (;;) {
      const rows = await sql.query(
        `select path, ${SELECT_STATE_COLUMNS} from file_state where agent_id = $1 and (path_position is null or entry_digest is null) limit ${FILL_BATCH}`,
        [agentId],
      );
      for (const r of rows) {
        const path = buf(r.path)!;
        const state = stateFromRow(r)!;
        await sql.query('update file_state set path_position = $3, entry_digest = $4 where agent_id = $1 and path_sha256 = sha256($2::bytea)', [
          agentId,
          path,
          pathPosition(path).toString(),
          entryDigest(path, state).toString(),
        ]);
      }
      if (rows.length < FILL_BATCH) return;
    }
  }

  return {
    async rangeDigests(agentId, ranges) {
      await fillMissing(agentId);
      if (!ranges.length) return [];
      const rows = await sql.query(
        `select r.i, count(f.path) as n, coalesce(bit_xor(f.entry_digest), 0)::text as x
         from unnest($2::bigint[], $3::bigint[]) with ordinality as r(lo, hi, i)
         left join file_state f on f.agent_id = $1 and f.path_position between r.lo and r.hi
         group by r.i order by r.i`,
        [agentId, ranges.map((r) => r[0].toString()), ranges.map((r) => r[1].toString())],
      );
      return rows.map((r) => ({ count: num(r.n), xor: BigInt(r.x as string) }));
    },
    async entriesIn(agentId, ranges) {
      await fillMissing(agentId);
      const out = ranges.map((): { path: Buffer; digest: bigint }[] => []);
      if (!ranges.length) return out;
      const rows = await sql.query(
        `select r.i, f.path, f.entry_digest::text as d
         from unnest($2::bigint[], $3::bigint[]) with ordinality as r(lo, hi, i)
         join file_state f on f.agent_id = $1 and f.path_position between r.lo and r.hi
         order by r.i, f.path`,
        [agentId, ranges.map((r) => r[0].toString()), ranges.map((r) => r[1].toString())],
      );
      for (const r of rows) out[num(r.i) - 1]!.push({ path: buf(r.path)!, digest: BigInt(r.d as string) });
      return out;
    },
  };
}
