import type { FileState } from '../../core/model.js';
import { buf, num, type SqlQueryable } from './sql.js';
import { SELECT_STATE_COLUMNS, stateFromRow } from './state-row.js';

export interface CurrentFile {
  readonly path: Buffer;
  readonly state: FileState;
  /** The seq of the delta that set this state. */
  readonly updatedSeq: number;
}

/** What the controller holds as an agent's current files (file_state), for operators and audits. */
export interface StateStore {
  /** One page in path byte order, after `after` (exclusive) when given. */
  page(agentId: string, opts: { after?: Buffer; limit: number }): Promise<CurrentFile[]>;
}

export function createStateStore(db: SqlQueryable): StateStore {
  return {
    async page(agentId, { after, limit }) {
      const rows = await db.query(
        // In path order through the index on the first 1,024 bytes (migration 12), whole paths breaking ties.
        `select path, updated_seq, ${SELECT_STATE_COLUMNS} from file_state
         where agent_id = $1 ${after ? 'and (substr(path, 1, 1024), path) > (substr($3::bytea, 1, 1024), $3::bytea)' : ''}
         order by substr(path, 1, 1024), path limit $2`,
        after ? [agentId, limit, after] : [agentId, limit],
      );
      return rows.map((r) => ({ path: buf(r.path)!, state: stateFromRow(r)!, updatedSeq: num(r.updated_seq) }));
    },
  };
}
