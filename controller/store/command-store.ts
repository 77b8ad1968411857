import type { ScanSummary } from '../../core/scan-summary.js';
import type { Clock } from './clock.js';
import { decodeScanSummary, encodeScanSummary } from './scan-summary-codec.js';
import { date, num, type SqlQueryable } from './sql.js';

/**
 * A command's state for one agent (docs/commands.md): pending (queued, not handed to a stream),
 * delivered (handed to the agent's stream), done (its report came), failed (the agent said it
 * failed or refused it, or the agent was revoked first), expired (no report by expires_at).
 */
export type CommandState = 'pending' | 'delivered' | 'done' | 'failed' | 'expired';
export const COMMAND_STATES: readonly CommandState[] = ['pending', 'delivered', 'done', 'failed', 'expired'];

export interface CommandRecord {
  readonly id: string;
  /** The fleet operation this command belongs to: one group per `vigilctl rescan`. */
  readonly groupId: string;
  readonly agentId: string;
  readonly kind: string;
  readonly args: Readonly<Record<string, unknown>>;
  readonly createdAt: Date;
  readonly createdBy: string;
  readonly expiresAt: Date;
  readonly deliveredAt: Date | null;
  readonly completedAt: Date | null;
  /** As of the read: a pending or delivered command past its expiry reads as expired. */
  readonly state: CommandState;
  readonly failure: string | null;
  /** The agent's scan report; null until it came. */
  readonly result: ScanSummary | null;
}

/** A fleet operation: what it was, and how many of its agents' commands are in each state. */
export interface CommandGroup {
  readonly groupId: string;
  readonly kind: string;
  readonly createdAt: Date;
  readonly createdBy: string;
  readonly expiresAt: Date;
  readonly counts: Readonly<Record<CommandState, number>>;
}

/** A command claimed for delivery: what the agent's stream is sent. */
export interface ClaimedCommand {
  readonly id: string;
  readonly groupId: string;
  readonly agentId: string;
  readonly expiresAt: Date;
  readonly kind: string;
  readonly args: Readonly<Record<string, unknown>>;
}

export interface NewCommandGroup {
  readonly groupId: string;
  readonly kind: string;
  readonly args: object;
  readonly createdBy: string;
  readonly expiresAt: Date;
  /** These agents (the revoked ones left out), or every agent neither revoked nor with only expired certificates. */
  readonly targets: { readonly agentIds: readonly string[] } | 'every-agent';
  /**
   * Agents whose commands are created claimed (delivered): those connected to the replica making
   * the group, which sends them at once. Nobody else can see the rows before they commit, so the
   * insert is the claim, and the bulk mark costs no statement of its own.
   */
  readonly claimedFor?: readonly string[];
}

export interface CommandFilter {
  readonly state?: CommandState | undefined;
  readonly agentId?: string | undefined;
  readonly groupId?: string | undefined;
  readonly limit: number;
}

/** An agent's report on one of its commands (the agent id from its certificate). */
export interface CommandReport {
  readonly id: string;
  readonly agentId: string;
  readonly result: ScanSummary;
  readonly failure?: string | undefined;
}

export interface CommandStore {
  get(ids: readonly string[]): Promise<CommandRecord[]>;
  /** One statement: a command per target agent, pending or claimed; returns them ordered by agent id. */
  createGroup(group: NewCommandGroup): Promise<{ id: string; agentId: string; claimed: boolean }[]>;
  /**
   * One statement: the unexpired pending commands of these agents (of one group, when given),
   * none of a revoked agent, become delivered; returns them oldest first. Two replicas or two
   * callers never claim the same command.
   */
  claimPending(agentIds: readonly string[], groupId?: string): Promise<ClaimedCommand[]>;
  /** Claimed commands whose stream had closed go back to pending (one statement). */
  unclaim(ids: readonly string[]): Promise<void>;
  /**
   * Records the agent's report: done, or failed with the agent's reason. The agent id comes from
   * the certificate: an agent completes only its own commands; false when there was none open.
   */
  complete(id: string, agentId: string, result: ScanSummary, failure?: string): Promise<boolean>;
  /** complete() for many reports in one statement (fleet/command-reports.ts); returns the ids completed. Each id at most once. */
  completeMany(reports: readonly CommandReport[]): Promise<Set<string>>;
  /** Open commands past their expiry become expired; those of revoked agents failed. */
  sweep(): Promise<{ expired: number; failed: number }>;
  /** Newest first; `more` when more matched than `limit`. */
  list(filter: CommandFilter): Promise<{ commands: CommandRecord[]; more: boolean }>;
  /** The group with this id, or the group of the command with this id. */
  group(id: string): Promise<CommandGroup | null>;
  /** A group's commands (in these states, when given), by agent id. */
  groupCommands(groupId: string, states?: readonly CommandState[]): Promise<CommandRecord[]>;
  /** The latest expiry of any pending command (null when none): no agent has one after it. */
  pendingUntil(): Promise<Date | null>;
}

/** The state as of `now` ($1 in every query that uses it). */
const STATE = `case when state in ('pending', 'delivered') and expires_at <= $1 then 'expired' else state end`;
const COLUMNS = `id, group_id, agent_id, kind, args, created_at, created_by, expires_at, delivered_at, completed_at, failure, result, ${STATE} as state`;

function toRecord(r: Record<string, unknown>): CommandRecord {
  return {
    id: r.id as string,
    groupId: r.group_id as string,
    agentId: r.agent_id as string,
    kind: r.kind as string,
    args: (r.args ?? {}) as Record<string, unknown>,
    createdAt: date(r.created_at)!,
    createdBy: r.created_by as string,
    expiresAt: date(r.expires_at)!,
    deliveredAt: date(r.delivered_at),
    completedAt: date(r.completed_at),
    state: r.state as CommandState,
    failure: (r.failure as string | null) ?? null,
    result: r.result === null || r.result === undefined ? null : decodeScanSummary(r.result, `commands.result of ${r.id as string}`),
  };
}

/** Commands sent down to agents (re-scans): one row per agent, grouped per fleet operation. */
export function createCommandStore(db: SqlQueryable, clock: Clock): CommandStore {
  const completeMany = async (reports: readonly CommandReport[]): Promise<Set<string>> => {
    if (!reports.length) return new Set();
    const rows = await db.query(
      `update commands c set completed_at = $1, result = u.result::jsonb, failure = u.failure,
         state = case when u.failure is null then 'done' else 'failed' end
       from unnest($2::text[], $3::text[], $4::text[], $5::text[]) as u(id, agent_id, result, failure)
       where c.id = u.id and c.agent_id = u.agent_id and c.state not in ('done', 'failed') returning c.id`,
      [clock(), reports.map((r) => r.id), reports.map((r) => r.agentId), reports.map((r) => JSON.stringify(encodeScanSummary(r.result))), reports.map((r) => r.failure ?? null)],
    );
    return new Set(rows.map((r) => r.id as string));
  };
  return {
    async get(ids) {
      if (!ids.length) return [];
      const rows = await db.query(`select ${COLUMNS} from commands where id = any($2::text[]) order by created_at, id`, [clock(), ids]);
      return rows.map(toRecord);
    },

    async createGroup(g) {
      const everyAgent = g.targets === 'every-agent';
      const agentIds = g.targets === 'every-agent' ? [] : g.targets.agentIds;
      if (!everyAgent && !agentIds.length) return [];
      const now = clock();
      // Agents neither revoked nor holding only expired certificates: those that can still connect.
      const which = everyAgent
        ? 'exists (select 1 from certificates c where c.agent_id = a.id and c.not_after > $4)'
        : 'a.id = any($8::text[])';
      const rows = await db.query(
        `insert into commands (id, group_id, agent_id, kind, args, created_at, created_by, expires_at, state, delivered_at)
         select gen_random_uuid()::text, $1, a.id, $2, $3::jsonb, $4, $5, $6,
           case when a.id = any($7::text[]) then 'delivered' else 'pending' end,
           case when a.id = any($7::text[]) then $4::timestamptz end
         from agents a where a.revoked_at is null and ${which}
         order by a.id
         returning id, agent_id, state`,
        [g.groupId, g.kind, JSON.stringify(g.args), now, g.createdBy, g.expiresAt, g.claimedFor ?? [], ...(everyAgent ? [] : [agentIds])],
      );
      return rows
        .map((r) => ({ id: r.id as string, agentId: r.agent_id as string, claimed: r.state === 'delivered' }))
        .sort((a, b) => (a.agentId < b.agentId ? -1 : a.agentId > b.agentId ? 1 : 0));
    },

    async claimPending(agentIds, groupId) {
      if (!agentIds.length) return [];
      const rows = await db.query(
        `update commands c set state = 'delivered', delivered_at = $1
         where c.state = 'pending' and c.expires_at > $1 and c.agent_id = any($2::text[])
           and ($3::text is null or c.group_id = $3)
           and not exists (select 1 from agents a where a.id = c.agent_id and a.revoked_at is not null)
         returning c.id, c.group_id, c.agent_id, c.expires_at, c.kind, c.args, c.created_at`,
        [clock(), agentIds, groupId ?? null],
      );
      return rows
        .sort((a, b) => date(a.created_at)!.getTime() - date(b.created_at)!.getTime() || String(a.id).localeCompare(String(b.id)))
        .map((r) => ({
          id: r.id as string,
          groupId: r.group_id as string,
          agentId: r.agent_id as string,
          expiresAt: date(r.expires_at)!,
          kind: r.kind as string,
          args: (r.args ?? {}) as Record<string, unknown>,
        }));
    },

    async unclaim(ids) {
      if (!ids.length) return;
      await db.query(`update commands set state = 'pending', delivered_at = null where id = any($1::text[]) and state = 'delivered'`, [ids]);
    },

    async complete(id, agentId, result, failure) {
      return (await completeMany([{ id, agentId, result, failure }])).has(id);
    },

    completeMany,

    async sweep() {
      const now = clock();
      const failed = await db.query(
        `update commands c set state = 'failed', failure = 'the agent was revoked before it reported', completed_at = $1
         from agents a where a.id = c.agent_id and a.revoked_at is not null and c.state in ('pending', 'delivered')
         returning c.id`,
        [now],
      );
      const expired = await db.query(`update commands set state = 'expired' where state in ('pending', 'delivered') and expires_at <= $1 returning id`, [now]);
      return { expired: expired.length, failed: failed.length };
    },

    async list(f) {
      const where: string[] = [];
      const params: unknown[] = [clock()];
      if (f.state) where.push(`${STATE} = $${params.push(f.state)}`);
      if (f.agentId) where.push(`agent_id = $${params.push(f.agentId)}`);
      if (f.groupId) where.push(`group_id = $${params.push(f.groupId)}`);
      const rows = await db.query(
        `select ${COLUMNS} from commands ${where.length ? `where ${where.join(' and ')}` : ''}
         order by created_at desc, id desc limit $${params.push(f.limit + 1)}`,
        params,
      );
      return { commands: rows.slice(0, f.limit).map(toRecord), more: rows.length > f.limit };
    },

    async group(id) {
      const rows = await db.query(
        `with g as (select coalesce((select group_id from commands where group_id = $2 limit 1), (select group_id from commands where id = $2)) as id)
         select c.group_id, min(c.kind) as kind, min(c.created_at) as created_at, min(c.created_by) as created_by, max(c.expires_at) as expires_at,
           count(*) filter (where ${STATE} = 'pending') as pending,
           count(*) filter (where ${STATE} = 'delivered') as delivered,
           count(*) filter (where ${STATE} = 'done') as done,
           count(*) filter (where ${STATE} = 'failed') as failed,
           count(*) filter (where ${STATE} = 'expired') as expired
         from commands c, g where c.group_id = g.id group by c.group_id`,
        [clock(), id],
      );
      const r = rows[0];
      if (!r) return null;
      return {
        groupId: r.group_id as string,
        kind: r.kind as string,
        createdAt: date(r.created_at)!,
        createdBy: r.created_by as string,
        expiresAt: date(r.expires_at)!,
        counts: { pending: num(r.pending), delivered: num(r.delivered), done: num(r.done), failed: num(r.failed), expired: num(r.expired) },
      };
    },

    async groupCommands(groupId, states) {
      const rows = await db.query(
        `select ${COLUMNS} from commands where group_id = $2 ${states?.length ? `and ${STATE} = any($3::text[])` : ''} order by agent_id, created_at`,
        [clock(), groupId, ...(states?.length ? [states] : [])],
      );
      return rows.map(toRecord);
    },

    async pendingUntil() {
      const rows = await db.query(`select max(expires_at) as until from commands where state = 'pending'`);
      return date(rows[0]?.until);
    },
  };
}
