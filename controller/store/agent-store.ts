import { certificateStatusFromRow, type CertificateStatus } from './certificate-store.js';
import type { Clock } from './clock.js';
import { date, num, type SqlQueryable } from './sql.js';

export interface AgentRecord {
  readonly id: string;
  readonly hostname: string;
  readonly labels: Record<string, string>;
  readonly enrolledAt: Date;
  readonly tokenId: string | null;
  readonly lastSeenAt: Date | null;
  readonly policyVersion: number;
  readonly revokedAt: Date | null;
  readonly revokeReason: string | null;
  /** Expiry of the newest certificate issued to the agent. */
  readonly certNotAfter: Date | null;
  /** Highest committed sequence number. */
  readonly lastSeq: number;
  /** Refreshed deltas committed (no history row each). */
  readonly refreshedCount: number;
  /** Deltas refused for their content; history rows + refreshedCount + this = lastSeq. */
  readonly refusedCount: number;
  /** Set while the controller refuses the agent's whole delta messages. */
  readonly deliveryBlocked: DeliveryBlocked | null;
  /**
   * The replica that last said it holds the agent's stream, and that replica's last heartbeat
   * (the stream counts as connected while it is fresh); null when no replica holds it.
   */
  readonly connection: AgentConnection | null;
  /** What the agent last reported about its queue and its watches; null before the first report. */
  readonly deliveryStatus: DeliveryStatus | null;
}

export interface AgentConnection {
  readonly replicaId: string;
  readonly replicaName: string;
  readonly heartbeatAt: Date;
}

export interface DeliveryBlocked {
  readonly seq: number;
  readonly reason: string;
  /** ISO time. */
  readonly at: string;
}

export interface GapInfo {
  readonly at: string;
  readonly root: string;
  readonly reason: string;
  readonly detail: string;
  readonly changesFound: number;
}

/** The agent's AgentStatus as stored (JSON: timestamps as ISO strings). */
export interface DeliveryStatus {
  readonly reportedAt: string;
  readonly resyncNeeded: boolean;
  readonly resyncSince: string | null;
  readonly unqueuedChanges: number;
  readonly queueLength: number;
  readonly queueBytes: number;
  readonly queueLimitBytes: number;
  readonly gaps: readonly GapInfo[];
  readonly gapsTotal: number;
  readonly scheduledOnly: readonly string[];
  /** Entries scheduledOnly would have in all (it holds the first ones); absent in older rows. */
  readonly scheduledOnlyTotal?: number;
  readonly lastReconcileAt: string | null;
  readonly lastReconcileRepairs: number;
}

export interface AgentStore {
  create(a: { id: string; hostname: string; tokenId: string; labels: Record<string, string> }): Promise<void>;
  get(id: string): Promise<AgentRecord | null>;
  list(): Promise<AgentRecord[]>;
  /** Marks the agent revoked (and all its certificates); false when unknown or revoked already. */
  revoke(id: string, reason: string): Promise<boolean>;
  setDeliveryStatus(id: string, status: DeliveryStatus): Promise<void>;
  /**
   * Records that a delta message from the agent was refused whole at `seq`, the first seq not
   * committed (cleared by the next commit; not set when a commit moved past it meanwhile).
   */
  setDeliveryBlocked(id: string, blocked: { seq: number; reason: string }): Promise<void>;
  /** Which of these agents are revoked. */
  revokedAmong(ids: readonly string[]): Promise<string[]>;
  /**
   * What a new stream is judged by, in one query: the agent and the recorded certificate with this
   * serial (null if Vigil never issued it); null when the agent is unknown.
   */
  forStream(id: string, serial: string): Promise<StreamLookup | null>;
  /** forStream() for many streams in one query (a reconnecting fleet): one result per pair, in order. */
  forStreams(pairs: readonly { readonly id: string; readonly serial: string }[]): Promise<(StreamLookup | null)[]>;
}

/** An agent and the recorded certificate a stream presented (null if Vigil never issued it). */
export interface StreamLookup {
  readonly agent: AgentRecord;
  readonly cert: CertificateStatus | null;
}

const COLUMNS = `a.*,
  (select max(not_after) from certificates c where c.agent_id = a.id) as cert_not_after,
  r.name as replica_name, r.heartbeat_at as replica_heartbeat_at`;
const FROM = 'from agents a left join replicas r on r.id = a.connected_replica';
const SELECT = `select ${COLUMNS} ${FROM}`;

function toRecord(r: Record<string, unknown>): AgentRecord {
  return {
    id: r.id as string,
    hostname: r.hostname as string,
    labels: (r.labels ?? {}) as Record<string, string>,
    enrolledAt: date(r.enrolled_at)!,
    tokenId: (r.token_id as string | null) ?? null,
    lastSeenAt: date(r.last_seen_at),
    policyVersion: num(r.policy_version),
    revokedAt: date(r.revoked_at),
    revokeReason: (r.revoke_reason as string | null) ?? null,
    certNotAfter: date(r.cert_not_after),
    lastSeq: num(r.committed_seq),
    refreshedCount: num(r.refreshed_count),
    refusedCount: num(r.refused_count),
    deliveryBlocked: (r.delivery_blocked as DeliveryBlocked | null) ?? null,
    deliveryStatus: (r.delivery_status as DeliveryStatus | null) ?? null,
    connection: r.connected_replica && r.replica_heartbeat_at ? { replicaId: r.connected_replica as string, replicaName: r.replica_name as string, heartbeatAt: date(r.replica_heartbeat_at)! } : null,
  };
}

export function createAgentStore(db: SqlQueryable, clock: Clock): AgentStore {
  const forStreams = async (pairs: readonly { readonly id: string; readonly serial: string }[]): Promise<(StreamLookup | null)[]> => {
    if (!pairs.length) return [];
    const rows = await db.query(
      `select ${COLUMNS}, u.n, (select to_jsonb(c) from certificates c where c.serial = u.serial) as cert
       from unnest($1::text[], $2::text[]) with ordinality as u(id, serial, n) join agents a on a.id = u.id
       left join replicas r on r.id = a.connected_replica`,
      [pairs.map((p) => p.id), pairs.map((p) => p.serial.toLowerCase())],
    );
    const found: (StreamLookup | null)[] = pairs.map(() => null);
    for (const r of rows) found[Number(r.n) - 1] = { agent: toRecord(r), cert: r.cert ? certificateStatusFromRow(r.cert as Record<string, unknown>) : null };
    return found;
  };
  return {
    async create({ id, hostname, tokenId, labels }) {
      await db.query('insert into agents (id, hostname, enrolled_at, token_id, labels) values ($1, $2, $3, $4, $5)', [
        id,
        hostname,
        clock(),
        tokenId,
        JSON.stringify(labels),
      ]);
    },
    async get(id) {
      const rows = await db.query(`${SELECT} where a.id = $1`, [id]);
      return rows[0] ? toRecord(rows[0]) : null;
    },
    async list() {
      return (await db.query(`${SELECT} order by a.enrolled_at, a.id`)).map(toRecord);
    },
    async setDeliveryStatus(id, status) {
      await db.query('update agents set delivery_status = $2 where id = $1', [id, JSON.stringify(status)]);
    },
    async setDeliveryBlocked(id, { seq, reason }) {
      // Only while seq is still the first one not committed: a commit since (another stream of
      // the same agent) means delivery moved on, and the block would be stale.
      await db.query('update agents set delivery_blocked = $2 where id = $1 and committed_seq = $3', [
        id,
        JSON.stringify({ seq, reason: reason.slice(0, 1000), at: clock().toISOString() }),
        seq - 1,
      ]);
    },
    forStream: async (id, serial) => (await forStreams([{ id, serial }]))[0]!,
    forStreams,
    async revokedAmong(ids) {
      if (!ids.length) return [];
      const rows = await db.query('select id from agents where id = any($1::text[]) and revoked_at is not null', [ids]);
      return rows.map((r) => r.id as string);
    },
    async revoke(id, reason) {
      const now = clock();
      const rows = await db.query('update agents set revoked_at = $2, revoke_reason = $3 where id = $1 and revoked_at is null returning id', [id, now, reason]);
      if (!rows.length) return false;
      await db.query('update certificates set revoked_at = $2 where agent_id = $1 and revoked_at is null', [id, now]);
      return true;
    },
  };
}
