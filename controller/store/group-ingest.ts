import { displayPath, type FileDelta } from '../../core/model.js';
import { entryDigest, pathPosition } from '../../core/sync-digest.js';
import { num, type SqlQueryable } from './sql.js';
import { stateParams, STATE_COLUMNS, STATE_PARAMS } from './state-row.js';

export interface NewAlert {
  readonly agentId: string;
  readonly seq: number;
  readonly rule: string;
  readonly id: number;
}

/** A delta refused for its content (docs/delivery.md, "Refused deltas"): kept apart, seq accounted for. */
export interface DeltaRefusal {
  readonly seq: number;
  readonly field: string;
  readonly reason: string;
  /** What the delta said, as far as it could be read. */
  readonly path: Buffer | null;
  readonly kind: string | null;
}

export interface IngestResult {
  /** True when the agent was revoked: nothing was stored. */
  readonly revoked: boolean;
  /** Highest sequence number now committed for the agent: everything up to it may be acked. */
  readonly committedSeq: number;
  /** The deltas that were new (not resends), in seq order. */
  readonly stored: readonly FileDelta[];
  /** Alerts recorded in the same transaction (the notification outbox). */
  readonly alerts: readonly NewAlert[];
  /** The refusals that were new (not resends), in seq order. */
  readonly refused: readonly DeltaRefusal[];
}

/** Decides which policy rule, if any, makes a change to this path alert. */
export type AlertRuleFor = (path: Buffer) => string | null;

/** One agent's part of a group commit: its new deltas and refusals, and how its policy alerts. */
export interface IngestBatch {
  readonly agentId: string;
  readonly deltas: readonly FileDelta[];
  readonly refusals: readonly DeltaRefusal[];
  readonly alertRuleFor: AlertRuleFor;
}

/** The Postgres array type of each state column, in STATE_COLUMNS order. */
const STATE_ARRAY_TYPES = ['text', 'bigint', 'integer', 'bigint', 'bigint', 'bigint', 'bigint', 'bigint', 'integer', 'bytea', 'bytea', 'text', 'text', 'bytea', 'bytea', 'bytea'];
if (STATE_ARRAY_TYPES.length !== STATE_PARAMS) throw new Error('STATE_ARRAY_TYPES and STATE_COLUMNS disagree');

/** `unnest($from::t1[], $from+1::t2[], ...)`: one array parameter per column. */
function unnestOf(from: number, types: readonly string[]): string {
  return `unnest(${types.map((t, i) => `$${from + i}::${t}[]`).join(', ')})`;
}

/** Columns of a row-major table, for unnest's column-major parameters. */
function columns(rows: readonly (readonly unknown[])[], width: number): unknown[][] {
  const out = Array.from({ length: width }, () => new Array<unknown>(rows.length));
  rows.forEach((row, r) => {
    for (let c = 0; c < width; c++) out[c]![r] = row[c];
  });
  return out;
}

const EVENT_INSERT = `insert into file_events (agent_id, seq, path, path_text, kind, source, ${STATE_COLUMNS}, detected_at, committed_at)
  select *, $${6 + STATE_PARAMS + 2}::timestamptz from ${unnestOf(1, ['text', 'bigint', 'bytea', 'text', 'text', 'text', ...STATE_ARRAY_TYPES, 'timestamptz'])}
  on conflict (agent_id, seq) do nothing returning agent_id, seq`;

const STATE_UPSERT = `insert into file_state (agent_id, path, path_text, ${STATE_COLUMNS}, updated_seq, path_position, entry_digest)
  select * from ${unnestOf(1, ['text', 'bytea', 'text', ...STATE_ARRAY_TYPES, 'bigint', 'bigint', 'bigint'])}
  on conflict (agent_id, path_sha256) do update set
    file_type = excluded.file_type, size = excluded.size, mode = excluded.mode, uid = excluded.uid,
    gid = excluded.gid, mtime_ns = excluded.mtime_ns, ctime_ns = excluded.ctime_ns, inode = excluded.inode,
    nlink = excluded.nlink, sha256 = excluded.sha256, symlink_target = excluded.symlink_target,
    error = excluded.error, digest_algorithm = excluded.digest_algorithm, digest = excluded.digest,
    xattrs_sha256 = excluded.xattrs_sha256, attr_values = excluded.attr_values,
    updated_seq = excluded.updated_seq, path_position = excluded.path_position, entry_digest = excluded.entry_digest`;

const STATE_DELETE = `delete from file_state f using unnest($1::text[], $2::bytea[]) as u(agent_id, path)
  where f.agent_id = u.agent_id and f.path_sha256 = sha256(u.path)`;

const ALERT_INSERT = `insert into alerts (agent_id, seq, rule, created_at)
  select *, $4::timestamptz from unnest($1::text[], $2::bigint[], $3::text[])
  on conflict do nothing returning id, agent_id, seq, rule`;

const REFUSAL_INSERT = `insert into refused_deltas (agent_id, seq, field, reason, path, kind, refused_at)
  select *, $7::timestamptz from unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bytea[], $6::text[])
  on conflict (agent_id, seq) do nothing returning agent_id, seq`;

// last_seen_at too: `agents ls` shows the agent's latest delivery, at no extra statement.
const AGENT_UPDATE = `update agents a set committed_seq = u.committed_seq, refreshed_count = a.refreshed_count + u.refreshed,
    refused_count = a.refused_count + u.refused, delivery_blocked = null, last_seen_at = $5
  from unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) as u(id, committed_seq, refreshed, refused)
  where a.id = u.id`;

const key = (agentId: string, seq: number) => `${agentId}\u0000${seq}`;

/**
 * Stores several agents' batches in one transaction with a fixed number of set-based statements
 * (docs/architecture.md, "Ingest"): the agents' rows are locked in id order (so two streams of one
 * identity, on any replica, cannot interleave, and two group commits cannot deadlock), a revoked
 * agent's batch is not stored, every delta at or below an agent's committed seq is a resend and
 * skipped, history rows go in with one INSERT over unnest (the unique (agent, seq) key keeps a
 * resend harmless), each path's current state moves to its last new delta, alerts and refusals go
 * in set-wise, and each agent's committed seq moves once. Batches must name distinct agents.
 * With skipLocked, an agent whose row another transaction holds (its ingest on another replica, a
 * revocation in progress) is left out and its result is null, so it cannot hold up the others.
 */
export async function ingestGroup(tx: SqlQueryable, batches: readonly IngestBatch[], now: Date, opts: { skipLocked: boolean }): Promise<(IngestResult | null)[]> {
  const ids = batches.map((b) => b.agentId);
  if (new Set(ids).size !== ids.length) throw new Error('a group commit holds one batch per agent');
  const locked = await tx.query(`select id, revoked_at, committed_seq from agents where id = any($1::text[]) order by id for update${opts.skipLocked ? ' skip locked' : ''}`, [ids]);
  const agents = new Map(locked.map((r) => [r.id as string, { revoked: Boolean(r.revoked_at), committed: num(r.committed_seq) }]));
  // Skipped: agents whose row another transaction holds (their batch waits for a later group).
  const busy = new Set<string>();
  const unseen = ids.filter((id) => !agents.has(id));
  if (opts.skipLocked && unseen.length) {
    for (const r of await tx.query('select id from agents where id = any($1::text[])', [unseen])) busy.add(r.id as string);
  }

  interface Work {
    readonly batch: IngestBatch;
    readonly before: number;
    readonly fresh: FileDelta[];
    readonly refusals: DeltaRefusal[];
  }
  const work: Work[] = [];
  const eventRows: unknown[][] = [];
  for (const batch of batches) {
    const agent = agents.get(batch.agentId);
    if (agent?.revoked || busy.has(batch.agentId)) continue;
    const before = agent?.committed ?? 0;
    const fresh = batch.deltas.filter((d) => d.seq > before).sort((a, b) => a.seq - b.seq);
    const refusals = batch.refusals.filter((r) => r.seq > before).sort((a, b) => a.seq - b.seq);
    work.push({ batch, before, fresh, refusals });
    for (const d of fresh) {
      // Refreshed deltas move the current state only: no history row, no alert (docs/delivery.md).
      if (d.kind === 'refreshed') continue;
      const s = d.state;
      eventRows.push([batch.agentId, d.seq, d.path, displayPath(d.path), d.kind, d.source, ...(s ? stateParams(s) : Array<null>(STATE_PARAMS).fill(null)), d.detectedAt]);
    }
  }

  const inserted = new Set<string>();
  if (eventRows.length) {
    const rows = await tx.query(EVENT_INSERT, [...columns(eventRows, 6 + STATE_PARAMS + 1), now]);
    for (const r of rows) inserted.add(key(r.agent_id as string, num(r.seq)));
  }

  // Each path's state moves to its last new delta: one row per path, so one statement can do it.
  const lastByPath = new Map<string, { agentId: string; d: FileDelta }>();
  const stored = new Map<string, FileDelta[]>();
  for (const { batch, fresh } of work) {
    const mine: FileDelta[] = [];
    stored.set(batch.agentId, mine);
    for (const d of fresh) {
      if (d.kind !== 'refreshed') {
        if (!inserted.has(key(batch.agentId, d.seq))) continue;
        mine.push(d);
      }
      lastByPath.set(`${batch.agentId}\u0000${d.path.toString('latin1')}`, { agentId: batch.agentId, d });
    }
  }
  const upserts: unknown[][] = [];
  const deletes: unknown[][] = [];
  for (const { agentId, d } of lastByPath.values()) {
    const s = d.state;
    if (d.kind === 'deleted' || !s) deletes.push([agentId, d.path]);
    else upserts.push([agentId, d.path, displayPath(d.path), ...stateParams(s), d.seq, pathPosition(d.path).toString(), entryDigest(d.path, s).toString()]);
  }
  if (deletes.length) await tx.query(STATE_DELETE, columns(deletes, 2));
  if (upserts.length) await tx.query(STATE_UPSERT, columns(upserts, 3 + STATE_PARAMS + 3));

  // A first baseline is history, not news: it never alerts.
  const alertRows: unknown[][] = [];
  for (const { batch } of work) {
    for (const d of stored.get(batch.agentId)!) {
      const rule = d.source === 'baseline' ? null : batch.alertRuleFor(d.path);
      if (rule !== null) alertRows.push([batch.agentId, d.seq, rule]);
    }
  }
  const alerts = new Map<string, NewAlert[]>();
  if (alertRows.length) {
    const rows = await tx.query(ALERT_INSERT, [...columns(alertRows, 3), now]);
    for (const r of rows.map((r) => ({ agentId: r.agent_id as string, seq: num(r.seq), rule: r.rule as string, id: num(r.id) })).sort((a, b) => a.seq - b.seq || a.id - b.id)) {
      const list = alerts.get(r.agentId) ?? [];
      list.push(r);
      alerts.set(r.agentId, list);
    }
  }

  const refusalRows = work.flatMap(({ batch, refusals }) => refusals.map((r) => [batch.agentId, r.seq, r.field, r.reason.slice(0, 1000), r.path?.subarray(0, 4096) ?? null, r.kind]));
  const refusedNew = new Set<string>();
  if (refusalRows.length) {
    const rows = await tx.query(REFUSAL_INSERT, [...columns(refusalRows, 6), now]);
    for (const r of rows) refusedNew.add(key(r.agent_id as string, num(r.seq)));
  }

  const results = new Map<string, IngestResult>();
  const agentRows: unknown[][] = [];
  for (const { batch, before, fresh, refusals } of work) {
    const refused = refusals.filter((r) => refusedNew.has(key(batch.agentId, r.seq)));
    const refreshed = fresh.filter((d) => d.kind === 'refreshed').length;
    const committedSeq = Math.max(before, ...fresh.map((d) => d.seq), ...refusals.map((r) => r.seq));
    if (committedSeq > before) agentRows.push([batch.agentId, committedSeq, refreshed, refused.length]);
    results.set(batch.agentId, { revoked: false, committedSeq, stored: stored.get(batch.agentId)!, alerts: alerts.get(batch.agentId) ?? [], refused });
  }
  if (agentRows.length) await tx.query(AGENT_UPDATE, [...columns(agentRows, 4), now]);
  return batches.map((b) => (busy.has(b.agentId) ? null : results.get(b.agentId) ?? { revoked: true, committedSeq: 0, stored: [], alerts: [], refused: [] }));
}
