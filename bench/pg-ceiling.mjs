#!/usr/bin/env node
// The bare Postgres ceiling for the controller's ingest (issue 16): the same rows the controller
// writes per delta (a file_events row and a file_state upsert, with the state's path position and
// entry digest reconciliation reads), written by plain `pg` in three
// ways, batches of --batch deltas from --agents agents over --connections connections:
//   row       two statements per delta in one transaction per batch (what the controller does today)
//   values    one multi-row INSERT and one multi-row upsert per batch
//   unnest    the same with one array parameter per column (one statement text for any batch size)
// Schema: the controller's own migrations, in a fresh database on DATABASE_URL's server (dropped
// after). bench/fleet-scale.mjs imports measureCeiling() to take the ceiling in its own run. Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres node bench/pg-ceiling.mjs
//   [--events 100000] [--batch 500] [--agents 100] [--connections 10]
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const { migrate } = await import(pathToFileURL(join(dist, 'controller/store/migrate.js')).href);
const { createPgSql } = await import(pathToFileURL(join(dist, 'controller/store/pg-sql.js')).href);

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

/** One batch's rows: agent, seq, path, state columns. */
function batchOf(agent, firstSeq, batch) {
  return Array.from({ length: batch }, (_, i) => {
    const path = Buffer.from(`/srv/app/${agent}/dir${(firstSeq + i) % 97}/file-${firstSeq + i}.conf`);
    const ids = randomBytes(16); // stand-ins for the path position and entry digest (core/sync-digest.ts)
    return { agent: `agent-${agent}`, seq: firstSeq + i, path, text: path.toString(), size: 100 + i, mtime: String(1_700_000_000_000_000_000n + BigInt(i)), sha: randomBytes(32), pos: String(ids.readBigInt64BE(0)), dig: String(ids.readBigInt64BE(8)) };
  });
}

const EVENT_COLS = 'agent_id, seq, path, path_text, kind, source, file_type, size, mode, uid, gid, mtime_ns, ctime_ns, inode, nlink, sha256, detected_at, committed_at';
const STATE_COLS = 'agent_id, path, path_text, file_type, size, mode, uid, gid, mtime_ns, ctime_ns, inode, nlink, sha256, updated_seq, path_position, entry_digest';
const UPSERT = `on conflict (agent_id, path_sha256) do update set size = excluded.size, mtime_ns = excluded.mtime_ns, sha256 = excluded.sha256, updated_seq = excluded.updated_seq, path_position = excluded.path_position, entry_digest = excluded.entry_digest`;

const strategies = {
  async row(c, rows) {
    for (const r of rows) {
      await c.query(`insert into file_events (${EVENT_COLS}) values ($1,$2,$3,$4,'modified','realtime','regular',$5,33188,0,0,$6,$6,42,1,$7,now(),now()) on conflict do nothing`, [r.agent, r.seq, r.path, r.text, r.size, r.mtime, r.sha]);
      await c.query(`insert into file_state (${STATE_COLS}) values ($1,$2,$3,'regular',$4,33188,0,0,$5,$5,42,1,$6,$7,$8,$9) ${UPSERT}`, [r.agent, r.path, r.text, r.size, r.mtime, r.sha, r.seq, r.pos, r.dig]);
    }
  },
  async values(c, rows) {
    const ev = [];
    const evParams = [];
    const st = [];
    const stParams = [];
    rows.forEach((r, i) => {
      const b = i * 7;
      ev.push(`($${b + 1},$${b + 2},$${b + 3},$${b + 4},'modified','realtime','regular',$${b + 5},33188,0,0,$${b + 6},$${b + 6},42,1,$${b + 7},now(),now())`);
      evParams.push(r.agent, r.seq, r.path, r.text, r.size, r.mtime, r.sha);
      const t = i * 9;
      st.push(`($${t + 1},$${t + 2},$${t + 3},'regular',$${t + 4},33188,0,0,$${t + 5},$${t + 5},42,1,$${t + 6},$${t + 7},$${t + 8},$${t + 9})`);
      stParams.push(r.agent, r.path, r.text, r.size, r.mtime, r.sha, r.seq, r.pos, r.dig);
    });
    await c.query(`insert into file_events (${EVENT_COLS}) values ${ev.join(',')} on conflict do nothing`, evParams);
    await c.query(`insert into file_state (${STATE_COLS}) values ${st.join(',')} ${UPSERT}`, stParams);
  },
  async unnest(c, rows) {
    const col = (f) => rows.map(f);
    const p = [col((r) => r.agent), col((r) => r.seq), col((r) => r.path), col((r) => r.text), col((r) => r.size), col((r) => r.mtime), col((r) => r.sha)];
    await c.query(
      `insert into file_events (${EVENT_COLS}) select a, s, p, t, 'modified', 'realtime', 'regular', z, 33188, 0, 0, m, m, 42, 1, h, now(), now()
       from unnest($1::text[], $2::bigint[], $3::bytea[], $4::text[], $5::bigint[], $6::bigint[], $7::bytea[]) as u(a, s, p, t, z, m, h) on conflict do nothing`,
      p,
    );
    await c.query(
      `insert into file_state (${STATE_COLS}) select a, p, t, 'regular', z, 33188, 0, 0, m, m, 42, 1, h, s, q, d
       from unnest($1::text[], $2::bigint[], $3::bytea[], $4::text[], $5::bigint[], $6::bigint[], $7::bytea[], $8::bigint[], $9::bigint[]) as u(a, s, p, t, z, m, h, q, d) ${UPSERT}`,
      [...p, col((r) => r.pos), col((r) => r.dig)],
    );
  },
};

/** Writes `events` rows in batches with one strategy; returns its events/s. */
async function run(pool, name, { events, batch, agents, connections }, seqBase) {
  const write = strategies[name];
  const batches = Math.ceil(events / batch);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      for (let b = next++; b < batches; b = next++) {
        const rows = batchOf(b % agents, seqBase + b * batch, batch);
        const c = await pool.connect();
        try {
          await c.query('begin');
          await write(c, rows);
          await c.query('commit');
        } finally {
          c.release();
        }
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  return { strategy: name, events: batches * batch, seconds: Number(seconds.toFixed(2)), eventsPerSecond: Math.round((batches * batch) / seconds) };
}

/** The ways this file knows, in the order they run by default. */
export const CEILING_WAYS = Object.keys(strategies);

/**
 * Measures each way in `ways` on one throwaway database (made on adminUrl's server with the
 * controller's migrations, dropped after, also when a way fails). Returns one result per way.
 */
export async function measureCeiling({ adminUrl, events = 100_000, batch = 500, agents = 100, connections = 10, ways = CEILING_WAYS }) {
  for (const w of ways) if (!strategies[w]) throw new Error(`unknown ceiling way ${w} (known: ${CEILING_WAYS.join(', ')})`);
  const db = await throwawayDatabase(adminUrl);
  const pool = new pg.Pool({ connectionString: db.url, max: connections });
  pool.on('error', () => undefined); // idle clients cut when the database is dropped
  const results = [];
  let seqBase = 0;
  try {
    for (const name of ways) {
      results.push(await run(pool, name, { events, batch, agents, connections }, seqBase));
      seqBase += Math.ceil(events / batch) * batch;
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
    return i > 0 ? Number(process.argv[i + 1]) : dflt;
  };
  const opts = { events: arg('events', 100_000), batch: arg('batch', 500), agents: arg('agents', 100), connections: arg('connections', 10) };
  const adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) throw new Error('DATABASE_URL (a server to create a throwaway database on) is required');
  const load = loadavg()[0].toFixed(2);
  let results = [];
  try {
    results = await measureCeiling({ adminUrl, ...opts });
  } catch (err) {
    console.error(`bench failed: ${err.message}`);
    process.exitCode = 1;
  }
  console.log(JSON.stringify({ ...opts, loadAverageAtStart: Number(load), results }, null, 2));
}
