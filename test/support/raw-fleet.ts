/**
 * A simulated fleet for fault tests: many enrolled agents, each its own identity and mutual-TLS
 * stream (raw streams, test/support/raw-agent.ts), each sending numbered delta batches as fast as
 * its acks allow and, after a stream fails, reconnecting and resending everything after the
 * committed seq the controller's welcome states, the way the real agent does
 * (agent/session/outbox-pump.ts). The driver checks the delivery contract as it goes (an ack never
 * goes back, a welcome never states less than was acked) and records what it sent, so a test can
 * compare what was acked with what Postgres holds.
 */
import { join } from 'node:path';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import type pg from 'pg';
import { pino } from 'pino';
import { enrol } from '../../agent/enrol.js';
import { FileDeltaSchema } from '../../proto/gen/vigil/v1/types_pb.js';
import { openRawStream, stateCreds, type RawStream } from './raw-agent.js';

/** An enrolled identity the fleet drives. */
export interface FleetMember {
  readonly id: string;
  readonly creds: { caPem: string; certPem: string; keyPem: string };
}

/** Enrols `count` agents into state directories under `root`, with one join string good for all of them. */
export async function enrolFleet(joinString: string, root: string, count: number): Promise<FleetMember[]> {
  const logger = pino({ level: 'silent' });
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const dir = join(root, `fleet-agent-${i}`);
      const identity = await enrol({ joinString, stateDir: dir, logger, hostname: `fleet-${i}` });
      return { id: identity.agentId, creds: stateCreds(dir) };
    }),
  );
}

/** Paths per simulated agent: seq s is a change to path (s-1) mod PATHS, in rounds of PATHS seqs. */
export const FLEET_PATHS = 1000;
const BASE_NS = 1_700_000_000_000_000_000n;

/**
 * The delta with seq `seq` of the agent with index `agent`: always the same, so a resend is the
 * same delta. Round 0 creates each path, round 1 rewrites it, round 2 changes its mode (every
 * tenth path is deleted instead), then rewrites again.
 */
export function fleetDelta(agent: number, seq: number): MessageInitShape<typeof FileDeltaSchema> {
  const index = (seq - 1) % FLEET_PATHS;
  const round = Math.floor((seq - 1) / FLEET_PATHS);
  const path = Buffer.from(`/srv/host-${agent}/app/d${index % 40}/file-${index}.conf`);
  const detectedAt = { seconds: BigInt(1_700_000_000 + Math.floor(seq / 1000)), nanos: (seq % 1000) * 1_000_000 };
  const deleted = round % 3 === 2 && index % 10 === 0;
  if (deleted) return { seq: BigInt(seq), path, kind: 3, detectedAt, source: 1 };
  const kind = round === 0 ? 1 : round % 3 === 2 ? 4 : 2;
  const sha256 = Buffer.alloc(32);
  sha256.writeUInt32BE(agent, 0);
  sha256.writeUInt32BE(seq, 4);
  const t = BASE_NS + BigInt(seq) * 1_000_000n;
  return {
    seq: BigInt(seq),
    path,
    kind,
    detectedAt,
    source: round === 0 ? 2 : 1,
    state: { type: 1, size: BigInt(100 + (seq % 977)), mode: round % 3 === 2 ? 0o100600 : 0o100644, uid: 0, gid: 0, mtimeNs: t, ctimeNs: t, inode: BigInt(10_000 + index), nlink: 1, sha256 },
  };
}

/** What the fleet's agent `agent` should hold in file_state after seqs 1..total: path → [updated_seq, mode]. */
export function fleetFinalState(agent: number, total: number): Map<string, { seq: number; mode: number }> {
  const out = new Map<string, { seq: number; mode: number }>();
  for (let seq = 1; seq <= total; seq++) {
    const d = fleetDelta(agent, seq);
    const path = Buffer.from(d.path!).toString();
    if (d.kind === 3) out.delete(path);
    else out.set(path, { seq, mode: d.state!.mode! });
  }
  return out;
}

export interface FleetAgentView {
  readonly index: number;
  readonly id: string;
  /** Highest ack received. */
  readonly acked: number;
  /** Highest seq sent on the current stream (or the last one). */
  readonly sentUpTo: number;
  /** Every delta sent, resends included. */
  readonly deltasSent: number;
  /** Streams opened (1 + reconnects, failed attempts included). */
  readonly streams: number;
  /** Each welcome's committed seq, in order. */
  readonly welcomes: readonly number[];
}

export interface RawFleetOptions {
  readonly members: readonly FleetMember[];
  /** Where the controller listens (read at every connect). */
  readonly address: () => string;
  /** Seqs 1..deltasPerAgent per agent. */
  readonly deltasPerAgent: number;
  /** Deltas per batch. */
  readonly batchSize: number;
  /** Most deltas sent and not yet acked (the real agent's stream.maxInFlight is 5,000). */
  readonly maxInFlight?: number;
  /** Pause before a reconnect, as the agent's backoff (kept short: the tests wait on it). */
  readonly reconnectMs?: number;
}

export interface RawFleet {
  /** Starts every agent. */
  start(): void;
  views(): FleetAgentView[];
  /** Highest ack per agent id, at this moment. */
  acked(): Map<string, number>;
  /** True when every agent's last seq is acked. */
  finished(): boolean;
  /** Breaches of the delivery contract seen by the agents (an ack going back, a welcome below an ack, a refused stream). */
  violations(): string[];
  /** How the streams ended (gRPC code: count), for diagnostics. */
  endings(): Record<string, number>;
  /** Per agent id, the ids of the commands the controller sent it (the fleet runs none of them). */
  commands(): Map<string, string[]>;
  stop(): void;
}

/**
 * gRPC codes that mean the controller refused this agent or its messages, not a transient failure;
 * INTERNAL (13) too: a fault of the controller's surroundings (the database restarting, a replica
 * killed) is UNAVAILABLE, never an internal error.
 */
const REFUSALS = new Set([3, 7, 8, 13, 16]);

export function createRawFleet(opts: RawFleetOptions): RawFleet {
  const maxInFlight = opts.maxInFlight ?? 5000;
  const reconnectMs = opts.reconnectMs ?? 100;
  const total = opts.deltasPerAgent;
  const violations: string[] = [];
  const endings: Record<string, number> = {};
  let stopped = false;

  const agents = opts.members.map((m, index) => {
    const a = {
      index,
      id: m.id,
      acked: 0,
      sentUpTo: 0,
      deltasSent: 0,
      streams: 0,
      welcomes: [] as number[],
      stream: undefined as RawStream | undefined,
      welcomed: false,
      commands: [] as string[],
    };
    const pump = () => {
      const s = a.stream;
      if (!s || !a.welcomed || stopped) return;
      while (a.sentUpTo < total && a.sentUpTo - a.acked < maxInFlight) {
        const from = a.sentUpTo + 1;
        const to = Math.min(total, a.sentUpTo + opts.batchSize);
        const deltas = Array.from({ length: to - from + 1 }, (_, i) => create(FileDeltaSchema, fleetDelta(index, from + i)));
        s.send({ msg: { case: 'deltas', value: { deltas } } });
        a.deltasSent += deltas.length;
        a.sentUpTo = to;
      }
    };
    const connect = () => {
      if (stopped) return;
      a.streams++;
      a.welcomed = false;
      const s = openRawStream(opts.address(), m.creds, (msg) => {
        if (a.stream !== s) return;
        if (msg.msg.case === 'command') {
          a.commands.push(msg.msg.value.id);
        } else if (msg.msg.case === 'welcome') {
          const committed = Number(msg.msg.value.committedSeq);
          a.welcomes.push(committed);
          if (committed < a.acked) violations.push(`agent ${index}: welcome states committed seq ${committed}, below the ${a.acked} acked before`);
          if (committed > total) violations.push(`agent ${index}: welcome states committed seq ${committed}, past the last seq sent (${total})`);
          // As the agent: everything after the controller's committed seq is sent (again).
          a.acked = Math.max(a.acked, committed);
          a.sentUpTo = committed;
          a.welcomed = true;
          pump();
        } else if (msg.msg.case === 'ack') {
          const upTo = Number(msg.msg.value.upToSeq);
          if (!a.welcomed) violations.push(`agent ${index}: ack ${upTo} before the welcome`);
          if (upTo < a.acked) violations.push(`agent ${index}: ack ${upTo} after an ack of ${a.acked}`);
          if (upTo > total) violations.push(`agent ${index}: ack ${upTo} past the last seq sent (${total})`);
          if (msg.msg.value.refused.length) violations.push(`agent ${index}: ${msg.msg.value.refused.length} deltas refused (${msg.msg.value.refused[0]!.reason})`);
          a.acked = Math.max(a.acked, upTo);
          a.sentUpTo = Math.max(a.sentUpTo, a.acked);
          if (a.acked >= total) {
            // Done: the agent's queue is empty. The stream is closed by stop().
            return;
          }
          pump();
        }
      });
      a.stream = s;
      s.send({ msg: { case: 'hello', value: { hostname: `fleet-${index}`, agentVersion: 'raw-fleet', policyVersion: 0n } } });
      void s.ended.then((err) => {
        if (a.stream !== s) return;
        const code = String(err.code ?? '?');
        endings[code] = (endings[code] ?? 0) + 1;
        if (!stopped && err.code !== undefined && REFUSALS.has(err.code)) violations.push(`agent ${index}: stream refused (code ${err.code}: ${err.details ?? err.message})`);
        s.close();
        a.stream = undefined;
        if (stopped || a.acked >= total) return;
        // The agent's backoff, shortened, with jitter so that the fleet does not reconnect in step.
        setTimeout(connect, reconnectMs * (0.5 + Math.random()));
      });
    };
    return { a, connect };
  });

  return {
    start: () => agents.forEach(({ connect }) => connect()),
    views: () => agents.map(({ a }) => ({ index: a.index, id: a.id, acked: a.acked, sentUpTo: a.sentUpTo, deltasSent: a.deltasSent, streams: a.streams, welcomes: [...a.welcomes] })),
    acked: () => new Map(agents.map(({ a }) => [a.id, a.acked])),
    finished: () => agents.every(({ a }) => a.acked >= total),
    violations: () => [...violations],
    endings: () => ({ ...endings }),
    commands: () => new Map(agents.map(({ a }) => [a.id, [...a.commands]])),
    stop() {
      stopped = true;
      for (const { a } of agents) {
        const s = a.stream;
        a.stream = undefined;
        s?.close();
      }
    },
  };
}

/** Per agent, what Postgres holds: its agents row and its history rows. */
export interface StoredDelivery {
  readonly committedSeq: number;
  readonly refreshed: number;
  readonly refused: number;
  readonly events: number;
  readonly distinctSeqs: number;
  readonly minSeq: number | null;
  readonly maxSeq: number | null;
}

/** Reads what Postgres holds for these agents, straight from the tables (not through the controller). */
export async function storedDelivery(db: pg.Client, ids: readonly string[]): Promise<Map<string, StoredDelivery>> {
  const { rows } = await db.query<{ id: string; committed_seq: string; refreshed_count: string; refused_count: string; events: string; distinct_seqs: string; min_seq: string | null; max_seq: string | null }>(
    `select a.id, a.committed_seq, a.refreshed_count, a.refused_count,
       count(e.seq) as events, count(distinct e.seq) as distinct_seqs, min(e.seq) as min_seq, max(e.seq) as max_seq
     from agents a left join file_events e on e.agent_id = a.id
     where a.id = any($1::text[]) group by a.id`,
    [ids],
  );
  const n = (v: string | null) => (v === null ? null : Number(v));
  return new Map(
    rows.map((r) => [
      r.id,
      { committedSeq: Number(r.committed_seq), refreshed: Number(r.refreshed_count), refused: Number(r.refused_count), events: Number(r.events), distinctSeqs: Number(r.distinct_seqs), minSeq: n(r.min_seq), maxSeq: n(r.max_seq) },
    ]),
  );
}

/** The agents of a database whose committed seq is past 0 and short of total. */
export async function partlyCommitted(db: pg.Client, ids: readonly string[], total: number): Promise<number> {
  const { rows } = await db.query<{ n: number }>('select count(*)::int as n from agents where id = any($1::text[]) and committed_seq > 0 and committed_seq < $2', [ids, total]);
  return rows[0]!.n;
}

/** Transactions open right now on the database, other than the caller's (a group commit in flight). */
export async function openTransactions(db: pg.Client): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    "select count(*)::int as n from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() and xact_start is not null and state in ('active', 'idle in transaction')",
  );
  return rows[0]!.n;
}

/**
 * Checks the end state of a fleet run: for every agent, every seq 1..total in file_events exactly
 * once, the agent's committed seq at total, every seq accounted for, and file_state equal to each
 * path's last delta. Returns the problems found (empty: all good).
 */
export async function checkFleetStored(db: pg.Client, members: readonly FleetMember[], total: number): Promise<string[]> {
  const problems: string[] = [];
  const stored = await storedDelivery(
    db,
    members.map((m) => m.id),
  );
  for (const [index, m] of members.entries()) {
    const s = stored.get(m.id);
    if (!s) {
      problems.push(`agent ${index}: no agents row`);
      continue;
    }
    const want: StoredDelivery = { committedSeq: total, refreshed: 0, refused: 0, events: total, distinctSeqs: total, minSeq: 1, maxSeq: total };
    if (JSON.stringify(s) !== JSON.stringify(want)) problems.push(`agent ${index}: stored ${JSON.stringify(s)}, expected ${JSON.stringify(want)}`);
    if (s.events + s.refreshed + s.refused !== s.committedSeq) problems.push(`agent ${index}: ${s.events} events + ${s.refreshed} refreshed + ${s.refused} refused != committed seq ${s.committedSeq}`);
    const { rows } = await db.query<{ path_text: string; updated_seq: string; mode: number }>('select path_text, updated_seq, mode from file_state where agent_id = $1', [m.id]);
    const expected = fleetFinalState(index, total);
    const wrong = rows.filter((r) => {
      const e = expected.get(r.path_text);
      return !e || e.seq !== Number(r.updated_seq) || e.mode !== r.mode;
    });
    if (rows.length !== expected.size || wrong.length) problems.push(`agent ${index}: file_state has ${rows.length} paths (expected ${expected.size}), ${wrong.length} not at their last delta (first: ${JSON.stringify(wrong[0])})`);
  }
  return problems;
}
