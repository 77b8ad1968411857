#!/usr/bin/env node
// The bare Postgres ceiling for the controller's ingest (issue 16): the rows the controller writes
// per delta — a file_events row and a file_state upsert with the state's path position and entry
// digest — written by plain `pg`, batches of --batch deltas from --agents agents over
// --connections connections, one transaction per batch, in these ways:
//   row            two statements per delta (what the controller did before issue 16)
//   values         one multi-row INSERT and one multi-row upsert per batch
//   unnest         the same with one array parameter per column (text arrays: pg's own encoding)
//   unnest-binary  the same with the arrays in Postgres' binary format (controller/store/binary-array.ts)
//   unnest-cte     binary arrays sent once, both inserts in one statement (WITH … INSERT … INSERT)
//   unnest-cte-checked  unnest-cte with what the controller's statement adds for exactly-once (the
//                  history insert's RETURNING, the state moved only for rows that went in, a count
//                  back): not a ceiling way (no plain load needs it), it prices those guarantees
//   unnest-constants  the ceiling as it was before (text arrays; kind, source, type, mode, owner,
//                  ctime, inode, nlink and detected_at as constants in the statement): for comparison
// No way checks for resends (a plain load; the controller's common group does not either, see
// controller/store/group-ingest.ts): history rows go in with a plain INSERT, the state with its
// upsert. The rows are the controller's: every column the controller binds per row is a parameter here too
// (kind, source, file type, mode, owner, both times, inode, nlink, the optional columns as nulls,
// detected_at), with the values the fleet benchmark's simulated agents send. Until issue 16's
// second round the ceiling took kind, source, type, mode, uid, gid, ctime, inode, nlink and
// detected_at as constants in the statement and bound 7 and 9 parameters instead of 23 and 22.
// Rows, their path digests and entry digests (random bytes standing in, as the controller computes
// them) are made before the clock starts: the ceiling measures Postgres and the driver, not row
// generation. Schema: the controller's own migrations, in a fresh database on DATABASE_URL's server
// (dropped after). bench/fleet-scale.mjs imports measureCeiling() to take the ceiling in its own
// run. Each way reports CPU µs per event: the throwaway database's backends, the server's shared
// writers (WAL writer, checkpointer, background writer), every postgres process (anyone's: other
// sessions' tests on a shared server count there), this client, the whole machine.
// Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres node bench/pg-ceiling.mjs
//   [--events 100000] [--batch 500] [--agents 100] [--connections 10] [--ways unnest,unnest-binary]
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { databaseCpuSample, databaseCpuSpent, machineBusySeconds, postgresCpuSeconds } from './fleet-scale/proc.mjs';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const { migrate } = await import(pathToFileURL(join(dist, 'controller/store/migrate.js')).href);
const { createPgSql } = await import(pathToFileURL(join(dist, 'controller/store/pg-sql.js')).href);
const { BinaryArray } = await import(pathToFileURL(join(dist, 'controller/store/binary-array.js')).href);

const dbCounter = { n: 0 };

/**
 * Creates a throwaway database with the controller's migrations on the server at adminUrl;
 * returns { url, drop }.
 */
async function throwawayDatabase(adminUrl) {
  const db = `vigil_ceiling_${process.pid}_${dbCounter.n++}`;
  const adminClient = new pg.Client({ connectionString: adminUrl });
  await adminClient.connect();
  try {
    await adminClient.query(`create database ${db}`);
  } finally {
    await adminClient.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${db}`;
  const sql = createPgSql(url.toString());
  await migrate(sql);
  await sql.close();
  return {
    url: url.toString(),
    name: db,
    async drop() {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      try {
        await c.query(`drop database if exists ${db} with (force)`);
      } finally {
        await c.end();
      }
    },
  };
}

const MTIME = 1_700_000_000_000_000_000n;

/** One batch's rows, as the simulated agents' deltas (bench/fleet-scale/sim-agents.mjs) become in the controller. */
function batchOf(agent, firstSeq, batch) {
  const agentId = `agent-${agent}`;
  const detectedAt = new Date(); // one per agent's burst, as the simulated agents send it
  return Array.from({ length: batch }, (_, i) => {
    const seq = firstSeq + i;
    const path = Buffer.from(`/srv/app/burst-${agent}/dir${seq % 97}/file-${seq}.conf`);
    const ids = randomBytes(16); // stand-ins for the path position and entry digest (core/sync-digest.ts)
    const mtime = MTIME + BigInt(i);
    return { agentId, seq, path, text: path.toString(), size: 100 + i, mode: 0o100644, uid: 0, gid: 0, mtime, ctime: mtime, inode: BigInt(seq), nlink: 1, sha: randomBytes(32), detectedAt, ids, pos: String(ids.readBigInt64BE(0)), dig: String(ids.readBigInt64BE(8)) };
  });
}

const STATE = 'file_type, size, mode, uid, gid, mtime_ns, ctime_ns, inode, nlink, sha256, symlink_target, error, digest_algorithm, digest, xattrs_sha256, attr_values';
const EVENT_COLS = `agent_id, seq, path, path_text, kind, source, ${STATE}, detected_at, committed_at`;
const STATE_COLS = `agent_id, path, path_text, ${STATE}, updated_seq, path_position, entry_digest`;
const UPSERT = `on conflict (agent_id, path_sha256) do update set file_type = excluded.file_type, size = excluded.size, mode = excluded.mode, uid = excluded.uid,
  gid = excluded.gid, mtime_ns = excluded.mtime_ns, ctime_ns = excluded.ctime_ns, inode = excluded.inode, nlink = excluded.nlink, sha256 = excluded.sha256,
  symlink_target = excluded.symlink_target, error = excluded.error, digest_algorithm = excluded.digest_algorithm, digest = excluded.digest,
  xattrs_sha256 = excluded.xattrs_sha256, attr_values = excluded.attr_values, updated_seq = excluded.updated_seq, path_position = excluded.path_position, entry_digest = excluded.entry_digest`;

/** A row's event parameters (23, then committed_at) and state parameters (22), as JS values for pg's own encoding. */
const eventValues = (r) => [r.agentId, r.seq, r.path, r.text, 'modified', 'realtime', 'regular', r.size, r.mode, r.uid, r.gid, String(r.mtime), String(r.ctime), String(r.inode), r.nlink, r.sha, null, null, null, null, null, null, r.detectedAt];
const stateValues = (r) => [r.agentId, r.path, r.text, 'regular', r.size, r.mode, r.uid, r.gid, String(r.mtime), String(r.ctime), String(r.inode), r.nlink, r.sha, null, null, null, null, null, null, r.seq, r.pos, r.dig];
const EVENT_TYPES = ['text', 'int8', 'bytea', 'text', 'text', 'text', 'text', 'int8', 'int4', 'int8', 'int8', 'int8', 'int8', 'int8', 'int4', 'bytea', 'bytea', 'text', 'text', 'bytea', 'bytea', 'bytea', 'timestamptz'];
const STATE_TYPES = ['text', 'bytea', 'text', ...EVENT_TYPES.slice(6, 22), 'int8', 'int8', 'int8'];
const unnestOf = (from, types) => `unnest(${types.map((t, i) => `$${from + i}::${t}[]`).join(', ')})`;
const placeholders = (from, n) => Array.from({ length: n }, (_, i) => `$${from + i}`).join(',');

/** The binary arrays of a batch: the 23 event columns, then path position and entry digest. */
function binaryColumns(rows) {
  const cols = EVENT_TYPES.map((t) => new BinaryArray(t, rows.length * 40));
  const pos = new BinaryArray('int8', rows.length * 12);
  const dig = new BinaryArray('int8', rows.length * 12);
  for (const r of rows) {
    cols[0].text(r.agentId);
    cols[1].int8(r.seq);
    cols[2].bytea(r.path);
    cols[3].text(r.text);
    cols[4].text('modified');
    cols[5].text('realtime');
    cols[6].text('regular');
    cols[7].int8(r.size);
    cols[8].int4(r.mode);
    cols[9].int8(r.uid);
    cols[10].int8(r.gid);
    cols[11].int8Big(r.mtime);
    cols[12].int8Big(r.ctime);
    cols[13].int8Big(r.inode);
    cols[14].int4(r.nlink);
    cols[15].bytea(r.sha);
    for (let c = 16; c < 22; c++) cols[c].null();
    cols[22].timestamptz(r.detectedAt.getTime());
    pos.int8Bytes(r.ids, 0);
    dig.int8Bytes(r.ids, 8);
  }
  const e = cols.map((c) => c.finish());
  return { events: e, state: [e[0], e[2], e[3], ...e.slice(6, 22), e[1], pos.finish(), dig.finish()] };
}

const strategies = {
  async row(c, rows) {
    for (const r of rows) {
      await c.query(`insert into file_events (${EVENT_COLS}) values (${placeholders(1, 23)}, now())`, eventValues(r));
      await c.query(`insert into file_state (${STATE_COLS}) values (${placeholders(1, 22)}) ${UPSERT}`, stateValues(r));
    }
  },
  async values(c, rows) {
    const ev = [];
    const evParams = [];
    const st = [];
    const stParams = [];
    rows.forEach((r, i) => {
      ev.push(`(${placeholders(i * 23 + 1, 23)}, now())`);
      evParams.push(...eventValues(r));
      st.push(`(${placeholders(i * 22 + 1, 22)})`);
      stParams.push(...stateValues(r));
    });
    await c.query(`insert into file_events (${EVENT_COLS}) values ${ev.join(',')}`, evParams);
    await c.query(`insert into file_state (${STATE_COLS}) values ${st.join(',')} ${UPSERT}`, stParams);
  },
  async unnest(c, rows) {
    const ev = rows.map(eventValues);
    const st = rows.map(stateValues);
    await c.query(`insert into file_events (${EVENT_COLS}) select *, now() from ${unnestOf(1, EVENT_TYPES)}`, EVENT_TYPES.map((_, i) => ev.map((r) => r[i])));
    await c.query(`insert into file_state (${STATE_COLS}) select * from ${unnestOf(1, STATE_TYPES)} ${UPSERT}`, STATE_TYPES.map((_, i) => st.map((r) => r[i])));
  },
  async 'unnest-cte-checked'(c, rows) {
    const { events, state } = binaryColumns(rows);
    const names = ['agent_id', 'seq', 'path', 'path_text', 'kind', 'source', ...STATE.split(', '), 'detected_at', 'path_position', 'entry_digest'];
    const [res] = (
      await c.query(
        `with u as materialized (select * from ${unnestOf(1, [...EVENT_TYPES, 'int8', 'int8'])} as u(${names.join(', ')})),
         ins as (insert into file_events (${EVENT_COLS}) select agent_id, seq, path, path_text, kind, source, ${STATE}, detected_at, now() from u on conflict (agent_id, seq) do nothing returning agent_id, seq),
         st as (insert into file_state (${STATE_COLS}) select agent_id, path, path_text, ${STATE}, seq, path_position, entry_digest from u where (agent_id, seq) in (select agent_id, seq from ins) ${UPSERT})
         select n, case when n = $26::int then null else (select array_agg(agent_id || ' ' || seq) from ins) end as inserted from (select count(*)::int as n from ins) c`,
        [...events, state.at(-2), state.at(-1), rows.length],
      )
    ).rows;
    if (res.n !== rows.length) throw new Error(`${res.n} of ${rows.length} rows inserted`);
  },
  async 'unnest-constants'(c, rows) {
    const col = (f) => rows.map(f);
    const p = [col((r) => r.agentId), col((r) => r.seq), col((r) => r.path), col((r) => r.text), col((r) => r.size), col((r) => String(r.mtime)), col((r) => r.sha)];
    await c.query(
      `insert into file_events (${EVENT_COLS}) select a, s, p, t, 'modified', 'realtime', 'regular', z, 33188, 0, 0, m, m, 42, 1, h, null, null, null, null, null, null, now(), now()
       from unnest($1::text[], $2::bigint[], $3::bytea[], $4::text[], $5::bigint[], $6::bigint[], $7::bytea[]) as u(a, s, p, t, z, m, h) on conflict do nothing`,
      p,
    );
    await c.query(
      `insert into file_state (agent_id, path, path_text, file_type, size, mode, uid, gid, mtime_ns, ctime_ns, inode, nlink, sha256, updated_seq, path_position, entry_digest)
       select a, p, t, 'regular', z, 33188, 0, 0, m, m, 42, 1, h, s, q, d
       from unnest($1::text[], $2::bigint[], $3::bytea[], $4::text[], $5::bigint[], $6::bigint[], $7::bytea[], $8::bigint[], $9::bigint[]) as u(a, s, p, t, z, m, h, q, d)
       on conflict (agent_id, path_sha256) do update set size = excluded.size, mtime_ns = excluded.mtime_ns, sha256 = excluded.sha256, updated_seq = excluded.updated_seq, path_position = excluded.path_position, entry_digest = excluded.entry_digest`,
      [...p, col((r) => r.pos), col((r) => r.dig)],
    );
  },
  async 'unnest-binary'(c, rows) {
    const { events, state } = binaryColumns(rows);
    await c.query(`insert into file_events (${EVENT_COLS}) select *, now() from ${unnestOf(1, EVENT_TYPES)}`, events);
    await c.query(`insert into file_state (${STATE_COLS}) select * from ${unnestOf(1, STATE_TYPES)} ${UPSERT}`, state);
  },
  async 'unnest-cte'(c, rows) {
    const { events, state } = binaryColumns(rows);
    const names = ['agent_id', 'seq', 'path', 'path_text', 'kind', 'source', ...STATE.split(', '), 'detected_at', 'path_position', 'entry_digest'];
    await c.query(
      `with u as materialized (select * from ${unnestOf(1, [...EVENT_TYPES, 'int8', 'int8'])} as u(${names.join(', ')})),
       ev as (insert into file_events (${EVENT_COLS}) select agent_id, seq, path, path_text, kind, source, ${STATE}, detected_at, now() from u)
       insert into file_state (${STATE_COLS}) select agent_id, path, path_text, ${STATE}, seq, path_position, entry_digest from u ${UPSERT}`,
      [...events, state.at(-2), state.at(-1)],
    );
  },
};

/** Writes every prepared batch with one strategy; returns its events/s and CPU per event. */
async function run(pool, name, batches, connections, dbName) {
  const write = strategies[name];
  let next = 0;
  const query = async (t, p) => (await pool.query(t, p)).rows;
  const db0 = await databaseCpuSample(query, dbName);
  const t0 = performance.now();
  const pg0 = postgresCpuSeconds();
  const machine0 = machineBusySeconds();
  const client0 = process.cpuUsage();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      for (let b = next++; b < batches.length; b = next++) {
        const c = await pool.connect();
        try {
          await c.query('begin');
          await write(c, batches[b]);
          await c.query('commit');
        } finally {
          c.release();
        }
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const db = databaseCpuSpent(db0, await databaseCpuSample(query, dbName));
  const n = batches.reduce((s, b) => s + b.length, 0);
  // CPU per event: every postgres process (anyone's), this client process, the whole machine.
  const { user, system } = process.cpuUsage(client0);
  const perEvent = (s) => Number(((s * 1e6) / n).toFixed(1));
  const cpuUsPerEvent = { postgresThisDatabase: perEvent(db.backends), postgresWriters: perEvent(db.background), postgres: perEvent(postgresCpuSeconds() - pg0), client: perEvent((user + system) / 1e6), machine: perEvent(machineBusySeconds() - machine0) };
  return { strategy: name, events: n, seconds: Number(seconds.toFixed(2)), eventsPerSecond: Math.round(n / seconds), cpuUsPerEvent };
}

/** The ways this file knows. */
export const CEILING_WAYS = Object.keys(strategies);

/**
 * Measures each way in `ways` on one throwaway database (made on adminUrl's server with the
 * controller's migrations, dropped after, also when a way fails). Returns one result per way.
 */
export async function measureCeiling({ adminUrl, events = 100_000, batch = 500, agents = 100, connections = 10, ways = ['values', 'unnest', 'unnest-binary', 'unnest-cte'] }) {
  for (const w of ways) if (!strategies[w]) throw new Error(`unknown ceiling way ${w} (known: ${CEILING_WAYS.join(', ')})`);
  const db = await throwawayDatabase(adminUrl);
  const pool = new pg.Pool({ connectionString: db.url, max: connections });
  pool.on('error', () => undefined); // idle clients cut when the database is dropped
  const results = [];
  let seqBase = 0;
  try {
    for (const name of ways) {
      const count = Math.ceil(events / batch);
      const batches = Array.from({ length: count }, (_, b) => batchOf(b % agents, seqBase + b * batch + 1, batch));
      seqBase += count * batch;
      results.push(await run(pool, name, batches, connections, db.name));
    }
  } finally {
    await pool.end();
    await db.drop();
  }
  return results;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name, dflt) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : dflt;
  };
  const opts = { events: Number(arg('events', 100_000)), batch: Number(arg('batch', 500)), agents: Number(arg('agents', 100)), connections: Number(arg('connections', 10)) };
  const ways = arg('ways', 'values,unnest,unnest-binary,unnest-cte').split(',');
  const adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) throw new Error('DATABASE_URL (a server to create a throwaway database on) is required');
  const load = loadavg()[0].toFixed(2);
  let results = [];
  try {
    results = await measureCeiling({ adminUrl, ...opts, ways });
  } catch (err) {
    console.error(`bench failed: ${err.message}`);
    process.exitCode = 1;
  }
  console.log(JSON.stringify({ ...opts, ways, loadAverageAtStart: Number(load), results }, null, 2));
}
