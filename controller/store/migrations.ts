/**
 * Schema migrations, run in order at controller start-up on both Postgres and PGlite.
 * Never edit a migration that has shipped: add a new one.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
create table agents (
  id              text primary key,
  hostname        text not null default '',
  labels          jsonb not null default '{}',
  enrolled_at     timestamptz not null,
  token_id        text,
  last_seen_at    timestamptz,
  policy_version  bigint not null default 0,
  revoked_at      timestamptz
);

create table enrolment_tokens (
  id           text primary key,
  secret_hash  bytea not null,
  created_at   timestamptz not null,
  created_by   text not null,
  expires_at   timestamptz not null,
  uses_allowed integer not null check (uses_allowed > 0),
  uses         integer not null default 0,
  labels       jsonb not null default '{}',
  revoked_at   timestamptz
);

create table certificates (
  serial          text primary key,
  agent_id        text,
  subject         text not null,
  key_fingerprint text not null,
  token_id        text,
  not_before      timestamptz not null,
  not_after       timestamptz not null,
  issued_at       timestamptz not null
);
create index certificates_agent on certificates (agent_id);

create table policies (
  version     bigint primary key,
  document    jsonb not null,
  created_at  timestamptz not null,
  created_by  text not null
);

-- Current state of every path an agent watches.
create table file_state (
  agent_id        text not null,
  path            bytea not null,
  path_text       text not null,
  file_type       text not null,
  size            bigint not null,
  mode            integer not null,
  uid             bigint not null,
  gid             bigint not null,
  mtime_ns        bigint not null,
  ctime_ns        bigint not null,
  inode           bigint not null,
  nlink           integer not null,
  sha256          bytea,
  symlink_target  bytea,
  error           text,
  updated_seq     bigint not null,
  primary key (agent_id, path)
);

-- Append-only history. (agent_id, seq) is the exactly-once key.
create table file_events (
  agent_id        text not null,
  seq             bigint not null,
  path            bytea not null,
  path_text       text not null,
  kind            text not null check (kind in ('created', 'modified', 'deleted', 'attributes')),
  source          text not null,
  file_type       text,
  size            bigint,
  mode            integer,
  uid             bigint,
  gid             bigint,
  mtime_ns        bigint,
  ctime_ns        bigint,
  inode           bigint,
  nlink           integer,
  sha256          bytea,
  symlink_target  bytea,
  error           text,
  detected_at     timestamptz not null,
  committed_at    timestamptz not null,
  primary key (agent_id, seq)
);
create index file_events_detected_at on file_events (detected_at);

create table alerts (
  id          bigserial primary key,
  agent_id    text not null,
  seq         bigint not null,
  rule        text not null,
  created_at  timestamptz not null,
  notified_at timestamptz,
  unique (agent_id, seq, rule)
);

create table commands (
  id           text primary key,
  agent_id     text not null,
  kind         text not null,
  args         jsonb not null default '{}',
  created_at   timestamptz not null,
  created_by   text not null,
  delivered_at timestamptz,
  completed_at timestamptz,
  result       jsonb
);
create index commands_agent on commands (agent_id);

create table audit_log (
  id      bigserial primary key,
  at      timestamptz not null,
  actor   text not null,
  action  text not null,
  target  text not null default '',
  details jsonb not null default '{}'
);
`,
  },
  {
    version: 2,
    name: 'revocation and operator certificates',
    sql: `
alter table agents add column revoke_reason text;
alter table certificates add column kind text not null default 'agent';
alter table certificates add column revoked_at timestamptz;
create index certificates_subject on certificates (subject);
`,
  },
  {
    version: 3,
    name: 'alert outbox lease',
    sql: `
alter table alerts add column claimed_until timestamptz;
create index alerts_pending on alerts (id) where notified_at is null;
`,
  },
  {
    version: 4,
    name: 'digests other than sha256',
    sql: `
alter table file_events add column digest_algorithm text;
alter table file_events add column digest bytea;
alter table file_state add column digest_algorithm text;
alter table file_state add column digest bytea;
`,
  },
  {
    version: 5,
    name: 'extended attributes digest',
    sql: `
alter table file_events add column xattrs_sha256 bytea;
alter table file_state add column xattrs_sha256 bytea;
`,
  },
  {
    version: 6,
    name: 'reconciliation digests',
    sql: `
-- core/sync-digest.ts: where the path sits in position space, and the digest of path and state.
-- Set on every upsert; rows written before this migration get them at their first reconciliation.
alter table file_state add column path_position bigint;
alter table file_state add column entry_digest bigint;
create index file_state_position on file_state (agent_id, path_position);
-- Finds the rows still without digests at an index lookup, on every reconciliation request.
create index file_state_missing_digest on file_state (agent_id) where path_position is null or entry_digest is null;
`,
  },
  {
    version: 7,
    name: 'committed sequence on the agent, delivery status',
    sql: `
-- Refreshed deltas (docs/delivery.md) move file_state without a history row, so the highest
-- committed seq is kept here, in the ingest transaction. An auditor checks
-- count(file_events) + refreshed_count = committed_seq.
alter table agents add column committed_seq bigint not null default 0;
alter table agents add column refreshed_count bigint not null default 0;
update agents a set committed_seq = coalesce((select max(seq) from file_events e where e.agent_id = a.id), 0);
-- The agent's last AgentStatus: resync flag, queue, gap records, scheduled-only roots.
alter table agents add column delivery_status jsonb;
`,
  },
  {
    version: 8,
    name: 'refused deltas',
    sql: `
-- A delta the controller refuses for its content (docs/delivery.md, "Refused deltas") is kept
-- here, not in the history, so its seq is accounted for and the agent's queue moves on:
-- count(file_events) + refreshed_count + refused_count = committed_seq.
create table refused_deltas (
  agent_id    text not null references agents (id),
  seq         bigint not null,
  field       text not null,
  reason      text not null,
  -- What the delta said, as far as it could be read (at most 4096 bytes of its path).
  path        bytea,
  kind        text,
  refused_at  timestamptz not null,
  primary key (agent_id, seq)
);
alter table agents add column refused_count bigint not null default 0;
-- Set while the controller refuses the agent's whole delta messages (seq out of range, batch too
-- large): {seq, reason, at}. Cleared when a later batch commits.
alter table agents add column delivery_blocked jsonb;
`,
  },
  {
    version: 9,
    name: 'operator roles',
    sql: `
-- The role an operator certificate carries (admin or viewer), for \`vigilctl admins ls\`; null for
-- agents' certificates and for operator certificates recorded before this migration.
alter table certificates add column role text;
`,
  },
  {
    version: 10,
    name: 'named attribute values',
    sql: `
-- FileState.attrValues: the values of the ACL and SELinux attributes a rule checks (acl, selinux),
-- encoded as agent/xattrs.ts says; null: not read.
alter table file_events add column attr_values bytea;
alter table file_state add column attr_values bytea;
`,
  },
  {
    version: 11,
    name: 'fleet presence',
    sql: `
-- Which replica holds each agent's live stream (written in batches by fleet/presence.ts), and each
-- replica's heartbeat: a stream counts as connected while its replica's heartbeat is fresh, so a
-- replica that died does not leave its agents "connected".
alter table agents add column connected_replica text;
alter table agents add column connected_stream text;
create table replicas (
  id            text primary key,
  name          text not null,
  started_at    timestamptz not null,
  heartbeat_at  timestamptz not null
);
`,
  },
  {
    version: 12,
    name: 'file_state keyed by path digest',
    sql: `
-- A btree entry holds at most 2,704 bytes: a 4,095-byte path of random names could not be indexed,
-- so its delta failed the whole ingest. The current state is keyed by the path's SHA-256; listing in
-- path order uses an index on the path's first 1,024 bytes (ties sorted on the whole path).
alter table file_state add column path_sha256 bytea not null generated always as (sha256(path)) stored;
alter table file_state drop constraint file_state_pkey;
alter table file_state add primary key (agent_id, path_sha256);
create index file_state_path_order on file_state (agent_id, substr(path, 1, 1024));
`,
  },
  {
    version: 13,
    name: 'commands as a fleet operation',
    sql: `
-- docs/commands.md: one group per fleet operation (vigilctl rescan), a row per agent with its state;
-- pending rows wait for their agent until expires_at (queued for agents not connected anywhere).
alter table commands add column group_id text;
alter table commands add column expires_at timestamptz;
alter table commands add column state text not null default 'pending'
  check (state in ('pending', 'delivered', 'done', 'failed', 'expired'));
alter table commands add column failure text;
-- Rows from before queuing: a command never delivered was never going to be (it was not queued).
update commands set
  group_id = id,
  expires_at = created_at,
  state = case when completed_at is not null then 'done' when delivered_at is not null then 'delivered' else 'expired' end;
alter table commands alter column group_id set not null;
alter table commands alter column expires_at set not null;
create index commands_group on commands (group_id, agent_id);
-- An agent's commands (claim at connect, ls --agent), newest last; replaces the index on agent_id.
create index commands_agent_created on commands (agent_id, created_at);
drop index commands_agent;
-- Open commands by expiry: the sweep, and the latest expiry of a pending one.
create index commands_open on commands (expires_at) where state in ('pending', 'delivered');
-- commands ls, newest first.
create index commands_created on commands (created_at desc, id desc);
`,
  },
  {
    version: 14,
    name: 'enrolment failures shared by replicas',
    sql: `
-- Failed enrolment attempts per source address (controller/enrol-rate-limit.ts), in the database so
-- that the limit holds across replicas behind a load balancer. Rows older than the window are
-- deleted as new ones come.
create table enrol_failures (
  source     text not null,
  failed_at  timestamptz not null
);
create index enrol_failures_source on enrol_failures (source, failed_at);
create index enrol_failures_at on enrol_failures (failed_at);
`,
  },
];
