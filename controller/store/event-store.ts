import picomatch from 'picomatch';
import { displayPath, type FileDelta, type ChangeKind, type ChangeSource } from '../../core/model.js';
import type { Clock } from './clock.js';
import { buf, date, num, type Sql, type SqlQueryable } from './sql.js';

export type { AlertRuleFor, DeltaRefusal, IngestBatch, IngestResult, NewAlert } from './group-ingest.js';
import { ingestGroup, type AlertRuleFor, type DeltaRefusal, type IngestBatch, type IngestResult } from './group-ingest.js';
import { SELECT_STATE_COLUMNS, stateFromRow } from './state-row.js';

export interface StoredEvent {
  readonly agentId: string;
  readonly delta: FileDelta;
  readonly committedAt: Date;
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

export interface EventStore {
  /**
   * Stores one batch in one transaction: a history row per new delta (the unique (agent, seq) key
   * makes a resend harmless), the current state per path, and the alerts it raises; each refused
   * delta as a refusal, so that its seq is accounted for.
   */
  ingest(agentId: string, deltas: readonly FileDelta[], alertRuleFor: AlertRuleFor, refused?: readonly DeltaRefusal[]): Promise<IngestResult>;
  /**
   * Several agents' batches in one transaction (a group commit), one result per batch in order;
   * the batches must name distinct agents. An agent whose row another transaction holds is left
   * out, its result null: offer its batch again later.
   */
  ingestGroup(batches: readonly IngestBatch[]): Promise<(IngestResult | null)[]>;
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

export function createEventStore(sql: Sql, clock: Clock): EventStore {
  return {
    async ingest(agentId, deltas, alertRuleFor, refusals = []) {
      const [result] = await sql.transaction((tx) => ingestGroup(tx, [{ agentId, deltas, refusals, alertRuleFor }], clock(), { skipLocked: false }));
      return result!;
    },
    ingestGroup(batches) {
      return sql.transaction((tx) => ingestGroup(tx, batches, clock(), { skipLocked: true }));
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
