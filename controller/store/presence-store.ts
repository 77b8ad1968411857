import type { SqlQueryable } from './sql.js';

/** What a replica learnt about one agent's stream since its last flush (fleet/presence.ts). */
export interface PresenceUpdate {
  readonly agentId: string;
  /** When it was last heard from. */
  readonly at: Date;
  readonly hostname: string | null;
  readonly policyVersion: number | null;
  /** The stream opened here (connect) or closed here (disconnect); null: neither since the last flush. */
  readonly stream: { readonly id: string; readonly event: 'connect' | 'disconnect' } | null;
}

export interface PresenceStore {
  /** Writes many agents' presence in one statement (rows locked in id order). */
  record(replicaId: string, updates: readonly PresenceUpdate[]): Promise<void>;
  /** This replica is alive (and named so for `agents ls`). */
  heartbeat(replica: { id: string; name: string; startedAt: Date }, at: Date): Promise<void>;
  /** A replica stopping cleanly: its streams are no longer connected anywhere. */
  retire(replicaId: string): Promise<void>;
}

const RECORD = `with locked as (select id from agents where id = any($1::text[]) order by id for update)
  update agents a set
    last_seen_at = greatest(a.last_seen_at, u.at),
    hostname = coalesce(u.hostname, a.hostname),
    policy_version = coalesce(u.policy_version, a.policy_version),
    connected_replica = case when u.event = 'connect' then $7
                             when u.event = 'disconnect' and a.connected_stream = u.stream then null
                             else a.connected_replica end,
    connected_stream = case when u.event = 'connect' then u.stream
                            when u.event = 'disconnect' and a.connected_stream = u.stream then null
                            else a.connected_stream end
  from unnest($1::text[], $2::timestamptz[], $3::text[], $4::bigint[], $5::text[], $6::text[]) as u(id, at, hostname, policy_version, event, stream)
  where a.id = u.id and a.id in (select id from locked)`;

export function createPresenceStore(db: SqlQueryable): PresenceStore {
  return {
    async record(replicaId, updates) {
      if (!updates.length) return;
      const col = <T>(f: (u: PresenceUpdate) => T) => updates.map(f);
      await db.query(RECORD, [
        col((u) => u.agentId),
        col((u) => u.at),
        col((u) => u.hostname),
        col((u) => u.policyVersion),
        col((u) => u.stream?.event ?? null),
        col((u) => u.stream?.id ?? null),
        replicaId,
      ]);
    },
    async heartbeat({ id, name, startedAt }, at) {
      await db.query(
        `insert into replicas (id, name, started_at, heartbeat_at) values ($1, $2, $3, $4)
         on conflict (id) do update set heartbeat_at = excluded.heartbeat_at, name = excluded.name`,
        [id, name, startedAt, at],
      );
    },
    async retire(replicaId) {
      await db.query('update agents set connected_replica = null, connected_stream = null where connected_replica = $1', [replicaId]);
      await db.query('delete from replicas where id = $1', [replicaId]);
    },
  };
}
