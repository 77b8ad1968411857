import { ControllerError } from './errors.js';
import { INGEST_DEFAULTS, type IngestQueueOptions } from './ingest/ingest-queue.js';
import { parseHostPort, type HostPort } from './listen-address.js';

/**
 * Controller options, compiled once into a validated object. Defaults:
 *
 * | option              | flag / env                         | default             |
 * |---------------------|------------------------------------|---------------------|
 * | home                | VIGIL_HOME                         | ~/.vigil            |
 * | listen              | --listen                           | 0.0.0.0:8443        |
 * | enrolListen         | --enrol-listen                     | 0.0.0.0:8444        |
 * | databaseUrl         | DATABASE_URL                       | (PGlite in home/db) |
 * | slack               | SLACK_TOKEN, SLACK_CHANNEL, SLACK_API_URL | (alerts to the log) |
 * | agentCertLifetimeMs | VIGIL_AGENT_CERT_TTL (e.g. 24h)    | 24 h                |
 * | operatorCertLifetimeMs | VIGIL_OPERATOR_CERT_TTL         | 90 d                |
 * | caPassphrase        | VIGIL_CA_PASSPHRASE                | (CA key not encrypted) |
 * | enrolFailures       | VIGIL_ENROL_FAILURES_PER_MINUTE    | 10 per source address |
 * | maxBatch            |                                    | 1000 deltas         |
 * | metricsListen       | --metrics-listen, VIGIL_METRICS_LISTEN | off (plain HTTP: /metrics, /healthz, /readyz) |
 * | ingest.concurrency  | VIGIL_INGEST_CONNECTIONS           | 3 group commits     |
 * | ingest.groupMax     |                                    | 2000 deltas         |
 * | ingest.agentSlice   |                                    | 250 deltas          |
 * | ingest.expressMax   |                                    | 100 deltas (one more group commit, of agents that had nothing queued) |
 * | commandExpiryMs     | VIGIL_COMMAND_TTL (e.g. 24h)       | 24 h                |
 * | commandSweepMs      |                                    | 10 s                |
 */
export interface ControllerConfig {
  readonly home: string;
  readonly listen: HostPort;
  readonly enrolListen: HostPort;
  /** Plain-HTTP /metrics, /healthz and /readyz (controller/observability/); null: not served. */
  readonly metricsListen: HostPort | null;
  readonly databaseUrl: string | undefined;
  readonly slack: { readonly token: string; readonly channel: string; readonly apiUrl: string | undefined } | undefined;
  readonly agentCertLifetimeMs: number;
  readonly operatorCertLifetimeMs: number;
  /** Decrypts the CA key when it is stored encrypted. A secret: never logged. */
  readonly caPassphrase: string | undefined;
  /** Failed enrolment attempts allowed per source address per window. */
  readonly enrolFailures: { readonly max: number; readonly windowMs: number };
  readonly maxBatch: number;
  /** How delta batches share Postgres (controller/ingest/ingest-queue.ts). */
  readonly ingest: Required<IngestQueueOptions>;
  /** How often each replica re-checks its agents' streams against the revocation list. */
  readonly revocationSweepMs: number;
  /** How often the alert outbox is swept for alerts that were not sent. */
  readonly alertSweepMs: number;
  /**
   * How long a command waits for its agent and its report (docs/commands.md): queued for an agent
   * not connected, then expired. A `vigilctl rescan` may ask for another lifetime.
   */
  readonly commandExpiryMs: number;
  /** How often commands past their expiry are marked expired, and revoked agents' commands failed. */
  readonly commandSweepMs: number;
}

export interface ControllerConfigInput {
  readonly home: string;
  readonly listen?: string;
  readonly enrolListen?: string;
  readonly metricsListen?: string;
  readonly env: NodeJS.ProcessEnv;
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses 90s, 15m, 1h, 7d. */
export function parseDuration(text: string, what: string): number {
  const m = /^(\d+)([smhd])$/.exec(text.trim());
  if (!m) throw new ControllerError('invalid_argument', `${what}: expected a duration like 30s, 15m, 1h or 7d, got "${text}"`);
  return Number(m[1]) * UNITS[m[2]!]!;
}

export function compileControllerConfig(input: ControllerConfigInput): ControllerConfig {
  const { env } = input;
  if (env.NODE_TLS_REJECT_UNAUTHORIZED === '0') {
    throw new ControllerError('failed_precondition', 'NODE_TLS_REJECT_UNAUTHORIZED=0 disables certificate checks; refusing to start');
  }
  const metricsListen = input.metricsListen ?? (env.VIGIL_METRICS_LISTEN || undefined);
  const slackToken = env.SLACK_TOKEN;
  if (slackToken && !env.SLACK_CHANNEL) throw new ControllerError('invalid_argument', 'SLACK_TOKEN is set but SLACK_CHANNEL is not');
  return {
    home: input.home,
    listen: parseHostPort(input.listen ?? '0.0.0.0:8443', '--listen'),
    enrolListen: parseHostPort(input.enrolListen ?? '0.0.0.0:8444', '--enrol-listen'),
    metricsListen: metricsListen ? parseHostPort(metricsListen, input.metricsListen ? '--metrics-listen' : 'VIGIL_METRICS_LISTEN') : null,
    databaseUrl: env.DATABASE_URL || undefined,
    slack: slackToken ? { token: slackToken, channel: env.SLACK_CHANNEL!, apiUrl: env.SLACK_API_URL || undefined } : undefined,
    agentCertLifetimeMs: env.VIGIL_AGENT_CERT_TTL ? parseDuration(env.VIGIL_AGENT_CERT_TTL, 'VIGIL_AGENT_CERT_TTL') : 24 * 3_600_000,
    operatorCertLifetimeMs: env.VIGIL_OPERATOR_CERT_TTL ? parseDuration(env.VIGIL_OPERATOR_CERT_TTL, 'VIGIL_OPERATOR_CERT_TTL') : 90 * 86_400_000,
    caPassphrase: env.VIGIL_CA_PASSPHRASE || undefined,
    enrolFailures: { max: positiveInt(env.VIGIL_ENROL_FAILURES_PER_MINUTE, 10, 'VIGIL_ENROL_FAILURES_PER_MINUTE'), windowMs: 60_000 },
    maxBatch: 1000,
    ingest: { ...INGEST_DEFAULTS, concurrency: positiveInt(env.VIGIL_INGEST_CONNECTIONS, INGEST_DEFAULTS.concurrency, 'VIGIL_INGEST_CONNECTIONS') },
    revocationSweepMs: 10_000,
    alertSweepMs: 30_000,
    commandExpiryMs: env.VIGIL_COMMAND_TTL ? parseDuration(env.VIGIL_COMMAND_TTL, 'VIGIL_COMMAND_TTL') : 24 * 3_600_000,
    commandSweepMs: 10_000,
  };
}

function positiveInt(text: string | undefined, fallback: number, what: string): number {
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new ControllerError('invalid_argument', `${what}: a whole number of at least 1`);
  return n;
}
