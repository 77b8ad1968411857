import picomatch from 'picomatch';
import { displayPath, type FileDelta, type ChangeKind, type ChangeSource } from '../../core/model.js';
import { entryDigest, pathPosition } from '../../core/sync-digest.js';
import type { Clock } from './clock.js';
import { buf, date, num, type Sql, type SqlQueryable } from './sql.js';
import { placeholders, SELECT_STATE_COLUMNS, STATE_COLUMNS, STATE_PARAMS, stateFromRow, stateParams } from './state-row.js';

export interface StoredEvent {
  readonly agentId: string;
  readonly delta: FileDelta;
  readonly committedAt: Date;
}

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

export interface EventFilter {
  readonly agentId?: string;
  readonly pathGlob?: string;
  readonly since?: Date;
  /** Detected before this time. */
  readonly until?: Date;
  readonly kinds?: readonly ChangeKind[];
  /** Older than this event, in detection order (the next page). */
  readonly before?: EventCursor;
  readonly limit: number;
}

/** An event's place in detection order: (detected_at, agent_id, seq). */
export interface EventCursor {
  readonly detectedAt: Date;
  readonly agentId: string;
  readonly seq: number;
}

/** Decides which policy rule, if any, makes a change to this path alert. */
export type AlertRuleFor = (path: Buffer) => string | null;

export interface EventStore {
  /**
   * Stores one batch in one transaction: a history row per new delta (the unique (agent, seq) key
   * makes a resend harmless), the current state per path, and the alerts it raises; each refused
   * delta as a refusal, so that its seq is accounted for.
   */
  ingest(agentId: string, deltas: readonly FileDelta[], alertRuleFor: AlertRuleFor, refused?: readonly DeltaRefusal[]): Promise<IngestResult>;
  /** The agent's refusals, newest first, and how many in all. */
  refusals(agentId: string, limit: number): Promise<{ readonly recent: readonly (DeltaRefusal & { readonly refusedAt: Date })[]; readonly total: number }>;
  committedSeq(agentId: string): Promise<number>;
  /** History rows stored for the agent. */
  countFor(agentId: string): Promise<number>;
  /** The newest `limit` matching events, oldest first; `more`: older ones match too. */
  list(filter: EventFilter): Promise<{ readonly events: StoredEvent[]; readonly more: boolean }>;
}

const SELECT_EVENTS = `select agent_id, seq, path, kind, source, ${SELECT_STATE_COLUMNS}, detected_at, committed_at from file_events`;

function toEvent(r: Record<string, unknown>): StoredEvent {
  const kind = r.kind as ChangeKind;
  const state = stateFromRow(r);
  return {
    agentId: r.agent_id as string,
    committedAt: date(r.committed_at)!,
    delta: {
      seq: num(r.seq),
      path: buf(r.path)!,
      kind,
      state,
      detectedAt: date(r.detected_at)!,
      source: r.source as ChangeSource,
    },
  };
}

async function committedSeqIn(db: SqlQueryable, agentId: string): Promise<number> {
  const rows = await db.query('select committed_seq from agents where id = $1', [agentId]);
  return num(rows[0]?.committed_seq);
}

/** Moves the agent's current state of one path to the delta's (removes it when there is none). */
async function applyToState(tx: SqlQueryable, agentId: string, d: FileDelta, pathText: string): Promise<void> {
  const s = d.state;
  if (d.kind === 'deleted' || !s) {
    await tx.query('delete from file_state where agent_id = $1 and path = $2', [agentId, d.path]);
    return;
  }
  await tx.query(
    `insert into file_state (agent_id, path, path_text, ${STATE_COLUMNS}, updated_seq, path_position, entry_digest)
     values (${placeholders(1, 3 + STATE_PARAMS + 3)})
     on conflict (agent_id, path) do update set
       file_type = excluded.file_type, size = excluded.size, mode = excluded.mode, uid = excluded.uid,
       gid = excluded.gid, mtime_ns = excluded.mtime_ns, ctime_ns = excluded.ctime_ns, inode = excluded.inode,
       nlink = excluded.nlink, sha256 = excluded.sha256, symlink_target = excluded.symlink_target,
       error = excluded.error, digest_algorithm = excluded.digest_algorithm, digest = excluded.digest,
       xattrs_sha256 = excluded.xattrs_sha256, attr_values = excluded.attr_values,
       updated_seq = excluded.updated_seq, path_position = excluded.path_position, entry_digest = excluded.entry_digest`,
    [agentId, d.path, pathText, ...stateParams(s), d.seq, pathPosition(d.path).toString(), entryDigest(d.path, s).toString()],
  );
}

export function createEventStore(sql: Sql, clock: Clock): EventStore {
  return {
    async ingest(agentId, deltas, alertRuleFor, refusals = []) {
      const sorted = [...deltas].sort((a, b) => a.seq - b.seq);
      return sql.transaction(async (tx) => {
        // Serialise ingest per agent so that two streams of one identity cannot interleave.
        await tx.query('select pg_advisory_xact_lock(hashtext($1))', [agentId]);
        // Checked in the same transaction: a revoked agent's batch is never stored.
        const agent = await tx.query('select revoked_at from agents where id = $1', [agentId]);
        if (agent[0]?.revoked_at) return { revoked: true, committedSeq: 0, stored: [], alerts: [], refused: [] };
        const before = await committedSeqIn(tx, agentId);
        const now = clock();
        const stored: FileDelta[] = [];
        const alerts: NewAlert[] = [];
        let refreshed = 0;
        for (const d of sorted) {
          if (d.seq <= before) continue;
          const pathText = displayPath(d.path);
          if (d.kind === 'refreshed') {
            // Current state only: no history row, no alert (docs/delivery.md).
            await applyToState(tx, agentId, d, pathText);
            refreshed++;
            continue;
          }
          const s = d.state;
          const inserted = await tx.query(
            `insert into file_events (agent_id, seq, path, path_text, kind, source, ${STATE_COLUMNS}, detected_at, committed_at)
             values (${placeholders(1, 6 + STATE_PARAMS + 2)})
             on conflict (agent_id, seq) do nothing returning seq`,
            [agentId, d.seq, d.path, pathText, d.kind, d.source, ...(s ? stateParams(s) : Array(STATE_PARAMS).fill(null)), d.detectedAt, now],
          );
          if (inserted.length === 0) continue;
          stored.push(d);
          await applyToState(tx, agentId, d, pathText);
          // A first baseline is history, not news: it never alerts.
          const rule = d.source === 'baseline' ? null : alertRuleFor(d.path);
          if (rule !== null) {
            const a = await tx.query(
              'insert into alerts (agent_id, seq, rule, created_at) values ($1, $2, $3, $4) on conflict do nothing returning id',
              [agentId, d.seq, rule, now],
            );
            if (a[0]) alerts.push({ agentId, seq: d.seq, rule, id: num(a[0].id) });
          }
        }
        const refused: DeltaRefusal[] = [];
        for (const r of [...refusals].sort((a, b) => a.seq - b.seq)) {
          if (r.seq <= before) continue;
          const inserted = await tx.query(
            `insert into refused_deltas (agent_id, seq, field, reason, path, kind, refused_at) values ($1, $2, $3, $4, $5, $6, $7)
             on conflict (agent_id, seq) do nothing returning seq`,
            [agentId, r.seq, r.field, r.reason.slice(0, 1000), r.path?.subarray(0, 4096) ?? null, r.kind, now],
          );
          if (inserted.length) refused.push(r);
        }
        const committedSeq = Math.max(before, ...sorted.map((d) => d.seq), ...refusals.map((r) => r.seq));
        if (committedSeq > before) {
          // last_seen_at too: `agents ls` shows the agent's latest delivery, at no extra statement.
          await tx.query('update agents set committed_seq = $2, refreshed_count = refreshed_count + $3, refused_count = refused_count + $4, delivery_blocked = null, last_seen_at = $5 where id = $1', [
            agentId,
            committedSeq,
            refreshed,
            refused.length,
            now,
          ]);
        }
        return { revoked: false, committedSeq, stored, alerts, refused };
      });
    },
    committedSeq(agentId) {
      return committedSeqIn(sql, agentId);
    },
    async refusals(agentId, limit) {
      const rows = await sql.query('select seq, field, reason, path, kind, refused_at from refused_deltas where agent_id = $1 order by seq desc limit $2', [agentId, limit]);
      const count = await sql.query('select refused_count from agents where id = $1', [agentId]);
      return {
        recent: rows.map((r) => ({ seq: num(r.seq), field: r.field as string, reason: r.reason as string, path: buf(r.path), kind: (r.kind as string | null) ?? null, refusedAt: date(r.refused_at)! })),
        total: num(count[0]?.refused_count),
      };
    },
    async countFor(agentId) {
      const rows = await sql.query('select count(*) as n from file_events where agent_id = $1', [agentId]);
      return num(rows[0]?.n);
    },
    async list({ agentId, pathGlob, since, until, kinds, before, limit }) {
      const where: string[] = [];
      const params: unknown[] = [];
      const add = (clause: (n: number) => string, value: unknown) => {
        params.push(value);
        where.push(clause(params.length));
      };
      if (agentId) add((n) => `agent_id = $${n}`, agentId);
      if (since) add((n) => `detected_at >= $${n}`, since);
      if (until) add((n) => `detected_at < $${n}`, until);
      if (kinds?.length) add((n) => `kind = any($${n}::text[])`, [...kinds]);
      let matches: ((p: string) => boolean) | null = null;
      if (pathGlob) {
        matches = picomatch(pathGlob, { dot: true });
        // The glob's literal directory part narrows the rows in SQL; the glob decides in JS.
        const base = picomatch.scan(pathGlob).base;
        if (base) add((n) => `path_text like $${n} escape '\\'`, `${base.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
      }
      const out: StoredEvent[] = [];
      const page = 1000;
      let cursor: EventCursor | null = before ?? null;
      let more = false;
      // Newest first, a page at a time by keyset (stable while rows are added), until `limit`
      // events match and one more shows whether older ones do; returned oldest first.
      while (out.length <= limit) {
        const pageParams = [...params];
        const pageWhere = [...where];
        if (cursor) {
          pageParams.push(cursor.detectedAt, cursor.agentId, cursor.seq);
          const n = pageParams.length;
          pageWhere.push(`(detected_at, agent_id, seq) < ($${n - 2}, $${n - 1}, $${n})`);
        }
        const rows = await sql.query(
          `${SELECT_EVENTS} ${pageWhere.length ? `where ${pageWhere.join(' and ')}` : ''}
           order by detected_at desc, agent_id desc, seq desc limit ${page}`,
          pageParams,
        );
        for (const r of rows) {
          const e = toEvent(r);
          cursor = { detectedAt: e.delta.detectedAt, agentId: e.agentId, seq: e.delta.seq };
          if (matches && !matches(displayPath(e.delta.path))) continue;
          if (out.length === limit) {
            more = true;
            break;
          }
          out.push(e);
        }
        if (more || rows.length < page) break;
      }
      return { events: out.reverse(), more };
    },
  };
}
