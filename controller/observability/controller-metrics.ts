import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { IngestBatch, IngestResult } from '../store/index.js';

/** What the metrics read when Prometheus scrapes: each a cheap in-memory look. */
export interface ControllerGauges {
  /** Agent streams connected to this replica. */
  streams(): number;
  /** The ingest queue: deltas not committed yet, agents with work queued, group commits running. */
  ingestQueue(): { readonly pending: number; readonly agents: number; readonly running: number };
  /** The Postgres pool, when there is one. */
  pool?(): { readonly total: number; readonly idle: number; readonly waiting: number };
  /**
   * Counts read from the database (each on an index of open rows only, so its cost does not grow
   * with history): commands pending and delivered (not reported yet), alerts not sent yet.
   */
  backlog?(): Promise<{ readonly commandsPending: number; readonly commandsDelivered: number; readonly alertsPending: number }>;
}

/**
 * The controller's Prometheus metrics (docs/deploy.md, "Metrics"): Node's process and runtime
 * defaults plus Vigil's own, in a registry of their own (never prom-client's global one, so two
 * controllers in one process, as in tests, do not share counters). Names follow Prometheus'
 * conventions: `vigil_` prefix, base units, `_total` on counters; no label takes a path or an
 * agent id.
 */
export interface ControllerMetrics {
  readonly registry: Registry;
  /** Wraps the group commit: counts batches, deltas stored and refused, times each commit. */
  timedIngest(ingest: (batches: readonly IngestBatch[]) => Promise<(IngestResult | null)[]>): (batches: readonly IngestBatch[]) => Promise<(IngestResult | null)[]>;
  /** An enrolment's outcome: `ok`, or the error code it was refused with. */
  enrolment(result: string): void;
  /** An agent's certificate was renewed over its stream. */
  renewal(): void;
  /** An agent was revoked here. */
  revocation(): void;
  /** Reads the gauges from these sources from now on. */
  observe(gauges: ControllerGauges): void;
}

/** Outcomes of an enrolment that get a label of their own; anything else is `other`. */
const ENROL_RESULTS = new Set(['ok', 'unauthenticated', 'permission_denied', 'invalid_argument', 'resource_exhausted', 'failed_precondition', 'unavailable', 'internal']);

export function createControllerMetrics(): ControllerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  let gauges: ControllerGauges | null = null;

  const batches = new Counter({ name: 'vigil_ingest_batches_total', help: 'Agent batches (or slices of one) committed by group commits.', registers: [registry] });
  const events = new Counter({ name: 'vigil_ingest_events_total', help: 'History rows stored (new deltas; resends and refreshes not counted).', registers: [registry] });
  const refused = new Counter({ name: 'vigil_ingest_refused_deltas_total', help: 'Deltas refused for their content, recorded and acked.', registers: [registry] });
  const groupErrors = new Counter({ name: 'vigil_ingest_group_commit_errors_total', help: 'Group commits that failed (then retried agent by agent).', registers: [registry] });
  const commitSeconds = new Histogram({
    name: 'vigil_ingest_group_commit_duration_seconds',
    help: 'Time from a group commit’s start to its commit.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const renewals = new Counter({ name: 'vigil_certificate_renewals_total', help: 'Agent certificates renewed over their stream (on this replica).', registers: [registry] });
  const revocations = new Counter({ name: 'vigil_agent_revocations_total', help: 'Agents revoked through this replica.', registers: [registry] });
  const enrolments = new Counter({ name: 'vigil_enrolments_total', help: 'Enrolment attempts by result.', labelNames: ['result'], registers: [registry] });
  new Gauge({
    name: 'vigil_agent_streams_connected',
    help: 'Agent streams connected to this replica.',
    registers: [registry],
    collect() {
      if (gauges) this.set(gauges.streams());
    },
  });
  new Gauge({
    name: 'vigil_ingest_queue_deltas',
    help: 'Deltas in the ingest queue, not committed yet.',
    registers: [registry],
    collect() {
      if (gauges) this.set(gauges.ingestQueue().pending);
    },
  });
  new Gauge({
    name: 'vigil_ingest_queue_agents',
    help: 'Agents with batches in the ingest queue.',
    registers: [registry],
    collect() {
      if (gauges) this.set(gauges.ingestQueue().agents);
    },
  });
  new Gauge({
    name: 'vigil_ingest_group_commits_running',
    help: 'Group commits running now.',
    registers: [registry],
    collect() {
      if (gauges) this.set(gauges.ingestQueue().running);
    },
  });
  new Gauge({
    name: 'vigil_postgres_pool_connections',
    help: 'Connections of the Postgres pool by state (in_use, idle), and requests waiting for one (waiting).',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const p = gauges?.pool?.();
      if (!p) return;
      this.set({ state: 'in_use' }, p.total - p.idle);
      this.set({ state: 'idle' }, p.idle);
      this.set({ state: 'waiting' }, p.waiting);
    },
  });

  // One database read at most every 5 s, shared by the gauges that show it.
  let backlog: { at: number; value: ReturnType<NonNullable<ControllerGauges['backlog']>> } | null = null;
  const readBacklog = () => {
    if (!gauges?.backlog) return null;
    if (!backlog || Date.now() - backlog.at > 5_000) {
      const value = gauges.backlog();
      value.catch(() => (backlog = null)); // a failed read is tried again at the next scrape
      backlog = { at: Date.now(), value };
    }
    return backlog.value;
  };
  new Gauge({
    name: 'vigil_commands_open',
    help: 'Commands not finished, by state: pending (queued for an agent not connected) and delivered (waiting for its report).',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const b = await readBacklog()?.catch(() => null);
      if (!b) return;
      this.set({ state: 'pending' }, b.commandsPending);
      this.set({ state: 'delivered' }, b.commandsDelivered);
    },
  });
  new Gauge({
    name: 'vigil_alerts_pending',
    help: 'Alerts recorded and not sent to their sink yet (the outbox).',
    registers: [registry],
    async collect() {
      const b = await readBacklog()?.catch(() => null);
      if (b) this.set(b.alertsPending);
    },
  });

  return {
    registry,
    timedIngest: (ingest) => async (group) => {
      const end = commitSeconds.startTimer();
      try {
        const results = await ingest(group);
        end();
        for (const r of results) {
          if (!r || r.revoked) continue;
          batches.inc();
          events.inc(r.stored.length);
          refused.inc(r.refused.length);
        }
        return results;
      } catch (err) {
        groupErrors.inc();
        throw err;
      }
    },
    renewal: () => renewals.inc(),
    revocation: () => revocations.inc(),
    enrolment: (result) => enrolments.inc({ result: ENROL_RESULTS.has(result) ? result : 'other' }),
    observe(g) {
      gauges = g;
    },
  };
}
