import { displayPath, type FileDelta } from '../../core/model.js';
import { entryDigestLatin1, pathDigestLatin1 } from '../../core/sync-digest.js';
import { BinaryArray, byteaArray, int8Array, textArray, type ElementType } from './binary-array.js';
import { num, type SqlQueryable } from './sql.js';
import { STATE_ARRAY_TYPES, STATE_COLUMNS, STATE_PARAMS, StateColumns } from './state-row.js';

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

/** `unnest($from::t1[], $from+1::t2[], ...)`: one array parameter per column. */
function unnestOf(from: number, types: readonly ElementType[]): string {
  return `unnest(${types.map((t, i) => `$${from + i}::${t}[]`).join(', ')})`;
}

const EVENT_TYPES: readonly ElementType[] = ['text', 'int8', 'bytea', 'text', 'text', 'text', ...STATE_ARRAY_TYPES, 'timestamptz'];
const EVENT_PARAMS = EVENT_TYPES.length;

const EVENT_COLUMNS = `agent_id, seq, path, path_text, kind, source, ${STATE_COLUMNS}, detected_at`;
/** The history insert answers with one row: how many rows went in and, only when not all did, which. */
const insertedCount = (ins: string, expectedParam: number) =>
  `select n, case when n = $${expectedParam}::int then null else (select array_agg(agent_id || ' ' || seq) from ${ins}) end as inserted from (select count(*)::int as n from ${ins}) c`;

// Every parameter is an array in Postgres' binary format (store/binary-array.ts).
//
// Two forms of each statement. "Clean": every agent of the group has its row locked here and no
// history row above its committed seq (the lock query looks), so every new delta (seq above the
// committed one) is a row that is not there yet, and no other transaction can add one while the
// lock is held (every history row is written here, under that lock): a plain INSERT, nothing read
// back. "Checked": an agent without a row (nothing to lock) or with history rows above its committed
// seq: the primary key skips what is there already and the statement says which rows went in.
const EVENT_INSERT_CLEAN = `insert into file_events (${EVENT_COLUMNS}, committed_at)
  select *, $${EVENT_PARAMS + 1}::timestamptz from ${unnestOf(1, EVENT_TYPES)}`;

const EVENT_INSERT = `with ins as (
    insert into file_events (${EVENT_COLUMNS}, committed_at)
    select *, $${EVENT_PARAMS + 1}::timestamptz from ${unnestOf(1, EVENT_TYPES)}
    on conflict (agent_id, seq) do nothing returning agent_id, seq)
  ${insertedCount('ins', EVENT_PARAMS + 2)}`;

const STATE_SET = `file_type = excluded.file_type, size = excluded.size, mode = excluded.mode, uid = excluded.uid,
    gid = excluded.gid, mtime_ns = excluded.mtime_ns, ctime_ns = excluded.ctime_ns, inode = excluded.inode,
    nlink = excluded.nlink, sha256 = excluded.sha256, symlink_target = excluded.symlink_target,
    error = excluded.error, digest_algorithm = excluded.digest_algorithm, digest = excluded.digest,
    xattrs_sha256 = excluded.xattrs_sha256, attr_values = excluded.attr_values,
    updated_seq = excluded.updated_seq, path_position = excluded.path_position, entry_digest = excluded.entry_digest`;

// The common group: every new delta a history row of a path no other delta of the group names.
// Then each history row is also its path's new current state, and one statement writes both from
// arrays sent and read once (checked: the state moves only with a history row that went in).
const EVENT_AND_STATE_INSERT_CLEAN = `with u as materialized (
    select * from ${unnestOf(1, [...EVENT_TYPES, 'int8', 'int8'])} as u(${EVENT_COLUMNS}, path_position, entry_digest)),
  ins as (
    insert into file_events (${EVENT_COLUMNS}, committed_at)
    select ${EVENT_COLUMNS}, $${EVENT_PARAMS + 3}::timestamptz from u)
  insert into file_state (agent_id, path, path_text, ${STATE_COLUMNS}, updated_seq, path_position, entry_digest)
  select agent_id, path, path_text, ${STATE_COLUMNS}, seq, path_position, entry_digest from u
  on conflict (agent_id, path_sha256) do update set ${STATE_SET}`;

const EVENT_AND_STATE_INSERT = `with u as materialized (
    select * from ${unnestOf(1, [...EVENT_TYPES, 'int8', 'int8'])} as u(${EVENT_COLUMNS}, path_position, entry_digest)),
  ins as (
    insert into file_events (${EVENT_COLUMNS}, committed_at)
    select ${EVENT_COLUMNS}, $${EVENT_PARAMS + 3}::timestamptz from u
    on conflict (agent_id, seq) do nothing returning agent_id, seq),
  st as (
    insert into file_state (agent_id, path, path_text, ${STATE_COLUMNS}, updated_seq, path_position, entry_digest)
    select agent_id, path, path_text, ${STATE_COLUMNS}, seq, path_position, entry_digest from u
    where (agent_id, seq) in (select agent_id, seq from ins)
    on conflict (agent_id, path_sha256) do update set ${STATE_SET})
  ${insertedCount('ins', EVENT_PARAMS + 4)}`;

// Otherwise the history first, then each path's last new delta (a path named twice, a refresh, a
// deletion): agent_id, path, path_text, the state columns, updated_seq, path_position, entry_digest.
const STATE_UPSERT = `insert into file_state (agent_id, path, path_text, ${STATE_COLUMNS}, updated_seq, path_position, entry_digest)
  select * from ${unnestOf(1, ['text', 'bytea', 'text', ...STATE_ARRAY_TYPES, 'int8', 'int8', 'int8'])}
  on conflict (agent_id, path_sha256) do update set ${STATE_SET}`;

const STATE_DELETE = `delete from file_state f using unnest($1::text[], $2::bytea[]) as u(agent_id, path)
  where f.agent_id = u.agent_id and f.path_sha256 = sha256(u.path)`;

const ALERT_INSERT = `insert into alerts (agent_id, seq, rule, created_at)
  select *, $4::timestamptz from unnest($1::text[], $2::int8[], $3::text[])
  on conflict do nothing returning id, agent_id, seq, rule`;

const REFUSAL_INSERT = `insert into refused_deltas (agent_id, seq, field, reason, path, kind, refused_at)
  select *, $7::timestamptz from unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::bytea[], $6::text[])
  on conflict (agent_id, seq) do nothing returning agent_id, seq`;

// last_seen_at too: `agents ls` shows the agent's latest delivery, at no extra statement.
const AGENT_UPDATE = `update agents a set committed_seq = u.committed_seq, refreshed_count = a.refreshed_count + u.refreshed,
    refused_count = a.refused_count + u.refused, delivery_blocked = null, last_seen_at = $5
  from unnest($1::text[], $2::int8[], $3::int8[], $4::int8[]) as u(id, committed_seq, refreshed, refused)
  where a.id = u.id`;

const key = (agentId: string, seq: number) => `${agentId} ${seq}`;

/**
 * path_text: the path as displayPath shows it. A path of printable ASCII without a backslash (most
 * paths) shows as its own bytes, so they go in as they are, without a string in between.
 */
function addPathText(col: BinaryArray, path: Buffer): void {
  for (let i = 0; i < path.length; i++) {
    const b = path[i]!;
    if (b < 0x20 || b >= 0x7f || b === 0x5c) {
      col.text(displayPath(path));
      return;
    }
  }
  col.bytea(path); // the same wire form as text: a length, then the bytes
}

/** The history rows of a group, column by column. */
class EventColumns {
  readonly agentId: BinaryArray;
  readonly seq: BinaryArray;
  readonly path: BinaryArray;
  readonly pathText: BinaryArray;
  readonly kind: BinaryArray;
  readonly source: BinaryArray;
  readonly state: StateColumns;
  readonly detectedAt: BinaryArray;

  constructor(rows: number) {
    this.agentId = new BinaryArray('text', rows * 40);
    this.seq = new BinaryArray('int8', rows * 12);
    this.path = new BinaryArray('bytea', rows * 80);
    this.pathText = new BinaryArray('text', rows * 80);
    this.kind = new BinaryArray('text', rows * 12);
    this.source = new BinaryArray('text', rows * 12);
    this.state = new StateColumns(rows);
    this.detectedAt = new BinaryArray('timestamptz', rows * 12);
  }

  add(agentId: string, d: FileDelta): void {
    this.agentId.text(agentId);
    this.seq.int8(d.seq);
    this.path.bytea(d.path);
    addPathText(this.pathText, d.path);
    this.kind.text(d.kind);
    this.source.text(d.source);
    this.state.add(d.state);
    this.detectedAt.timestamptz(d.detectedAt.getTime());
  }

  /** The EVENT_TYPES parameters, in order. */
  finish(): Buffer[] {
    return [this.agentId.finish(), this.seq.finish(), this.path.finish(), this.pathText.finish(), this.kind.finish(), this.source.finish(), ...this.state.finish(), this.detectedAt.finish()];
  }
}

/** One agent's share of the group, as the statements see it. */
interface Work {
  readonly batch: IngestBatch;
  readonly before: number;
  /** Deltas above the committed seq, in seq order. */
  readonly fresh: readonly FileDelta[];
  /** SHA-256 of each fresh delta's path (latin1 strings): the file_state key and the path position. */
  readonly pathDigests: readonly string[];
  readonly refusals: readonly DeltaRefusal[];
}

/** A path's last new delta in the group: the row file_state moves to. */
interface LastOfPath {
  readonly agentId: string;
  readonly d: FileDelta;
  /** SHA-256 of the path (latin1): the file_state key (path_sha256) and the path position. */
  readonly pathDigest: string;
}

/**
 * Stores several agents' batches in one transaction with a fixed number of set-based statements
 * (docs/architecture.md, "Ingest"): the agents' rows are locked in id order (so two streams of one
 * identity, on any replica, cannot interleave, and two group commits cannot deadlock), a revoked
 * agent's batch is not stored, every delta at or below an agent's committed seq is a resend and
 * skipped, history rows go in with one INSERT over unnest (where the lock and the seq check
 * cannot tell, an agent without a row or with history above its committed seq, the unique
 * (agent, seq) key keeps a resend harmless), each path's current state moves to its last new delta
 * (in the same statement when every delta is a new path of its own), alerts and refusals go in
 * set-wise, and each agent's committed seq moves once. Batches must name distinct agents.
 * With skipLocked, an agent whose row another transaction holds (its ingest on another replica, a
 * revocation in progress) is left out and its result is null, so it cannot hold up the others.
 * Every parameter is a binary array (store/binary-array.ts), built in one pass over the deltas.
 */
export async function ingestGroup(tx: SqlQueryable, batches: readonly IngestBatch[], now: Date, opts: { skipLocked: boolean }): Promise<(IngestResult | null)[]> {
  const ids = batches.map((b) => b.agentId);
  if (new Set(ids).size !== ids.length) throw new Error('a group commit holds one batch per agent');
  // `ahead`: history rows above the committed seq, which only a write outside this function could
  // have left (one index probe per agent); such an agent's group takes the checked statements.
  const locked = await tx.query(
    `select a.id, a.revoked_at, a.committed_seq, exists (select 1 from file_events e where e.agent_id = a.id and e.seq > a.committed_seq) as ahead
     from agents a where a.id = any($1::text[]) order by a.id for update${opts.skipLocked ? ' skip locked' : ''}`,
    [textArray(ids)],
  );
  const agents = new Map(locked.map((r) => [r.id as string, { revoked: Boolean(r.revoked_at), committed: num(r.committed_seq), ahead: Boolean(r.ahead) }]));
  // Skipped: agents whose row another transaction holds (their batch waits for a later group).
  const busy = new Set<string>();
  const unseen = ids.filter((id) => !agents.has(id));
  if (opts.skipLocked && unseen.length) {
    for (const r of await tx.query('select id from agents where id = any($1::text[])', [textArray(unseen)])) busy.add(r.id as string);
  }

  const work: Work[] = [];
  let rows = 0;
  // Whether one statement can write history and state: every new delta a history row with a state,
  // of a path no other new delta of the group names (file_state's key: agent, SHA-256 of the path).
  let oneStatement = true;
  // Whether every agent's new deltas are rows not in file_events yet (see EVENT_INSERT_CLEAN).
  let clean = true;
  const keys = new Set<string>();
  for (const batch of batches) {
    const agent = agents.get(batch.agentId);
    if (agent?.revoked || busy.has(batch.agentId)) continue;
    if (!agent || agent.ahead) clean = false;
    const before = agent?.committed ?? 0;
    const fresh = batch.deltas.filter((d) => d.seq > before).sort((a, b) => a.seq - b.seq);
    const refusals = batch.refusals.filter((r) => r.seq > before).sort((a, b) => a.seq - b.seq);
    const pathDigests = fresh.map((d) => pathDigestLatin1(d.path));
    work.push({ batch, before, fresh, pathDigests, refusals });
    const prefix = `${batch.agentId} `;
    for (let i = 0; i < fresh.length; i++) {
      const d = fresh[i]!;
      // Refreshed deltas move the current state only: no history row, no alert (docs/delivery.md).
      if (d.kind !== 'refreshed') rows++;
      if (!oneStatement) continue;
      const k = prefix + pathDigests[i]!;
      if (d.kind === 'refreshed' || d.kind === 'deleted' || !d.state || keys.has(k)) oneStatement = false;
      keys.add(k);
    }
  }

  let inserted: Set<string> | null = null; // null: every history row went in
  const wentIn = (agentId: string, d: FileDelta) => !inserted || inserted.has(key(agentId, d.seq));
  if (rows && oneStatement) {
    const cols = new EventColumns(rows);
    const position = new BinaryArray('int8', rows * 12);
    const digest = new BinaryArray('int8', rows * 12);
    for (const { batch, fresh, pathDigests } of work) {
      for (let i = 0; i < fresh.length; i++) {
        const d = fresh[i]!;
        cols.add(batch.agentId, d);
        position.int8Latin1(pathDigests[i]!);
        digest.int8Latin1(entryDigestLatin1(d.path, d.state!));
      }
    }
    const params = [...cols.finish(), position.finish(), digest.finish(), now];
    if (clean) await tx.query(EVENT_AND_STATE_INSERT_CLEAN, params);
    else {
      const [res] = await tx.query(EVENT_AND_STATE_INSERT, [...params, rows]);
      if (num(res!.n) !== rows) inserted = new Set((res!.inserted as string[] | null) ?? []);
    }
  } else if (rows) {
    const cols = new EventColumns(rows);
    for (const { batch, fresh } of work) for (const d of fresh) if (d.kind !== 'refreshed') cols.add(batch.agentId, d);
    if (clean) await tx.query(EVENT_INSERT_CLEAN, [...cols.finish(), now]);
    else {
      const [res] = await tx.query(EVENT_INSERT, [...cols.finish(), now, rows]);
      if (num(res!.n) !== rows) inserted = new Set((res!.inserted as string[] | null) ?? []);
    }
  }

  const stored = new Map<string, FileDelta[]>();
  for (const { batch, fresh } of work) stored.set(batch.agentId, fresh.filter((d) => d.kind !== 'refreshed' && wentIn(batch.agentId, d)));

  if (!oneStatement) {
    // Each path's state moves to its last new delta (a refresh, or a history row that went in):
    // one row per path, so one statement can do it.
    const last = new Map<string, LastOfPath>();
    for (const { batch, fresh, pathDigests } of work) {
      const prefix = `${batch.agentId} `;
      for (let i = 0; i < fresh.length; i++) {
        const d = fresh[i]!;
        if (d.kind !== 'refreshed' && !wentIn(batch.agentId, d)) continue;
        last.set(prefix + pathDigests[i]!, { agentId: batch.agentId, d, pathDigest: pathDigests[i]! });
      }
    }
    const removed = [...last.values()].filter(({ d }) => d.kind === 'deleted' || !d.state);
    if (removed.length) {
      const agentIds = new BinaryArray('text', removed.length * 40);
      const paths = new BinaryArray('bytea', removed.length * 80);
      for (const { agentId, d } of removed) {
        agentIds.text(agentId);
        paths.bytea(d.path);
      }
      await tx.query(STATE_DELETE, [agentIds.finish(), paths.finish()]);
    }
    const upserts = last.size - removed.length;
    if (upserts) {
      const agentIds = new BinaryArray('text', upserts * 40);
      const paths = new BinaryArray('bytea', upserts * 80);
      const pathTexts = new BinaryArray('text', upserts * 80);
      const state = new StateColumns(upserts);
      const seqs = new BinaryArray('int8', upserts * 12);
      const position = new BinaryArray('int8', upserts * 12);
      const digest = new BinaryArray('int8', upserts * 12);
      for (const { agentId, d, pathDigest: pd } of last.values()) {
        const s = d.state;
        if (d.kind === 'deleted' || !s) continue;
        agentIds.text(agentId);
        paths.bytea(d.path);
        addPathText(pathTexts, d.path);
        state.add(s);
        seqs.int8(d.seq);
        position.int8Latin1(pd);
        digest.int8Latin1(entryDigestLatin1(d.path, s));
      }
      await tx.query(STATE_UPSERT, [agentIds.finish(), paths.finish(), pathTexts.finish(), ...state.finish(), seqs.finish(), position.finish(), digest.finish()]);
    }
  }

  // A first baseline is history, not news: it never alerts.
  const alertAgents: string[] = [];
  const alertSeqs: number[] = [];
  const alertRules: string[] = [];
  for (const { batch } of work) {
    for (const d of stored.get(batch.agentId)!) {
      const rule = d.source === 'baseline' ? null : batch.alertRuleFor(d.path);
      if (rule === null) continue;
      alertAgents.push(batch.agentId);
      alertSeqs.push(d.seq);
      alertRules.push(rule);
    }
  }
  const alerts = new Map<string, NewAlert[]>();
  if (alertSeqs.length) {
    const rows = await tx.query(ALERT_INSERT, [textArray(alertAgents), int8Array(alertSeqs), textArray(alertRules), now]);
    for (const r of rows.map((r) => ({ agentId: r.agent_id as string, seq: num(r.seq), rule: r.rule as string, id: num(r.id) })).sort((a, b) => a.seq - b.seq || a.id - b.id)) {
      const list = alerts.get(r.agentId) ?? [];
      list.push(r);
      alerts.set(r.agentId, list);
    }
  }

  const refusalRows = work.flatMap(({ batch, refusals }) => refusals.map((r) => ({ agentId: batch.agentId, r })));
  const refusedNew = new Set<string>();
  if (refusalRows.length) {
    const rows = await tx.query(REFUSAL_INSERT, [
      textArray(refusalRows.map((x) => x.agentId)),
      int8Array(refusalRows.map((x) => x.r.seq)),
      textArray(refusalRows.map((x) => x.r.field)),
      textArray(refusalRows.map((x) => x.r.reason.slice(0, 1000))),
      byteaArray(refusalRows.map((x) => x.r.path?.subarray(0, 4096) ?? null)),
      textArray(refusalRows.map((x) => x.r.kind)),
      now,
    ]);
    for (const r of rows) refusedNew.add(key(r.agent_id as string, num(r.seq)));
  }

  const results = new Map<string, IngestResult>();
  const updated: { id: string; committedSeq: number; refreshed: number; refused: number }[] = [];
  for (const { batch, before, fresh, refusals } of work) {
    const refused = refusals.filter((r) => refusedNew.has(key(batch.agentId, r.seq)));
    let refreshed = 0;
    let committedSeq = before;
    for (const d of fresh) {
      if (d.kind === 'refreshed') refreshed++;
      if (d.seq > committedSeq) committedSeq = d.seq;
    }
    for (const r of refusals) if (r.seq > committedSeq) committedSeq = r.seq;
    if (committedSeq > before) updated.push({ id: batch.agentId, committedSeq, refreshed, refused: refused.length });
    results.set(batch.agentId, { revoked: false, committedSeq, stored: stored.get(batch.agentId)!, alerts: alerts.get(batch.agentId) ?? [], refused });
  }
  if (updated.length) {
    await tx.query(AGENT_UPDATE, [textArray(updated.map((u) => u.id)), int8Array(updated.map((u) => u.committedSeq)), int8Array(updated.map((u) => u.refreshed)), int8Array(updated.map((u) => u.refused)), now]);
  }
  return batches.map((b) => (busy.has(b.agentId) ? null : results.get(b.agentId) ?? { revoked: true, committedSeq: 0, stored: [], alerts: [], refused: [] }));
}
