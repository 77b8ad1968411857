#!/usr/bin/env node
// The controller's ingest path alone, in this process (issue 16): from a delta message's protobuf
// bytes to the commit, as the stream service runs it (decodeConnectRequest as the stream route does,
// readDeltaBatch, the delta pipeline's read-ahead, the fair ingest queue, the group commit), without
// TLS, HTTP/2 or the simulated agents' processes. Measures this process's CPU per event (and the
// garbage collector's part of it) and the CPU per event of the database's Postgres backends (and
// the server's shared writers, and every postgres process), so a change to the path can be judged
// on a shared machine where throughput is noise.
//
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres node bench/ingest-path.mjs
//     [--events 100000] [--agents 100] [--batch 500] [--rounds 3] [--pglite] [--cpu-prof FILE | --heap-prof FILE]
//     [--max-queued N] (the read-ahead's bound on deltas queued in all, services/stream/delta-pipeline.ts)
//     [--concurrency N] [--group-max N] [--express-max N] (the ingest queue's group commits at once, their size, its express lane: ingest/ingest-queue.ts)
//     [--quiet-interval MS] (a quiet agent sends one delta every MS during each round: its commit latency, p50/p99/max)
//
// Each round writes --events new deltas (unique paths, realistic states, as bench/fleet-scale's
// simulated agents send) on a throwaway database made with the controller's migrations (dropped
// after); --pglite runs on embedded PGlite instead. --cpu-prof FILE profiles the timed part of the
// last round (node:inspector) into FILE (a .cpuprofile); --heap-prof FILE samples what it allocates
// (a .heapprofile, objects collected since included). Needs `npm run build`.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { loadavg } from 'node:os';
import { PerformanceObserver, monitorEventLoopDelay } from 'node:perf_hooks';
import { create, toBinary } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import pino from 'pino';
import { options } from './fleet.mjs';
import { distImport } from './fleet-scale/dist.mjs';
import { databaseCpuSample, databaseCpuSpent, machineBusySeconds, postgresCpuSeconds } from './fleet-scale/proc.mjs';

const { createPgSql, createPgliteSql, migrate, createStores } = await distImport('controller/store/index.js');
const { createServerDatabase } = await distImport('test/support/databases.js');
const { createIngestQueue, INGEST_DEFAULTS } = await distImport('controller/ingest/ingest-queue.js');
const { readDeltaBatch } = await distImport('controller/services/stream/delta-batch.js');
const { createDeltaPipeline, DELTA_PIPELINE_DEFAULTS } = await distImport('controller/services/stream/delta-pipeline.js');
const { ConnectRequestSchema } = await distImport('proto/gen/vigil/v1/agent_pb.js');
const { decodeConnectRequest } = await distImport('proto/connect-request-decoder.js');
const { ChangeKind, ChangeSource, FileType } = await distImport('proto/gen/vigil/v1/types_pb.js');

const o = options();
const OPT = { events: o.num('--events', 100_000), agents: o.num('--agents', 100), batch: o.num('--batch', 500), rounds: o.num('--rounds', 3), pglite: o.has('--pglite'), cpuProf: o.str('--cpu-prof', null), heapProf: o.str('--heap-prof', null), maxQueued: o.num('--max-queued', DELTA_PIPELINE_DEFAULTS.maxQueued), concurrency: o.num('--concurrency', INGEST_DEFAULTS.concurrency), groupMax: o.num('--group-max', INGEST_DEFAULTS.groupMax), expressMax: o.num('--express-max', INGEST_DEFAULTS.expressMax), quietInterval: o.num("--quiet-interval", 100), smallFlow: o.num("--small-flow", DELTA_PIPELINE_DEFAULTS.smallFlow) };
const log = pino({ level: 'warn' });

let db = null;
let sql;
if (OPT.pglite) {
  sql = await createPgliteSql();
} else {
  db = await createServerDatabase(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  sql = createPgSql(db.url);
}
await migrate(sql);
const stores = createStores(sql, () => new Date());
const ids = Array.from({ length: OPT.agents }, (_, i) => `agent-${String(i).padStart(4, '0')}-${randomBytes(4).toString('hex')}`);
for (const id of ids) await stores.agents.create({ id, hostname: id, tokenId: 'bench', labels: {} });
// A quiet agent: one delta every --quiet-interval ms while the others burst; its commit latency.
const quietId = `quiet-${randomBytes(4).toString('hex')}`;
await stores.agents.create({ id: quietId, hostname: quietId, tokenId: 'bench', labels: {} });
let quietSeq = 0;

/** One agent's messages for a round: the encoded ConnectRequest bytes, as they arrive on the wire. */
function messages(agent, firstSeq, events) {
  const out = [];
  const detectedAt = timestampFromDate(new Date());
  let seq = firstSeq;
  for (let left = events; left > 0; left -= OPT.batch) {
    const deltas = [];
    for (let i = 0; i < Math.min(OPT.batch, left); i++) {
      seq++;
      deltas.push({
        seq: BigInt(seq),
        path: Buffer.from(`/srv/app/${agent}/dir${seq % 97}/file-${seq}.conf`),
        kind: ChangeKind.MODIFIED,
        state: { type: FileType.REGULAR, size: BigInt(100 + i), mode: 0o100644, uid: 0, gid: 0, mtimeNs: 1_700_000_000_000_000_000n + BigInt(i), ctimeNs: 1_700_000_000_000_000_000n + BigInt(i), inode: BigInt(seq), nlink: 1, sha256: randomBytes(32) },
        detectedAt,
        source: ChangeSource.REALTIME,
      });
    }
    out.push(toBinary(ConnectRequestSchema, create(ConnectRequestSchema, { msg: { case: 'deltas', value: { deltas } } })));
  }
  return out;
}

let gcMs = 0;
const gcKinds = {};
const GC_KIND = { 1: 'minor', 2: 'major', 4: 'incremental', 8: 'weakcb' };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcMs += e.duration;
    const k = GC_KIND[e.detail?.kind] ?? String(e.detail?.kind);
    gcKinds[k] = (gcKinds[k] ?? 0) + e.duration;
  }
}).observe({ entryTypes: ['gc'] });

const perAgent = Math.ceil(OPT.events / OPT.agents);
const results = [];
try {
  for (let round = 0; round < OPT.rounds; round++) {
    const msgs = ids.map((id) => messages(id, round * perAgent, perAgent));
    const queue = createIngestQueue((batches) => stores.events.ingestGroup(batches), { concurrency: OPT.concurrency, groupMax: OPT.groupMax, expressMax: OPT.expressMax });
    const deps = { agents: stores.agents, events: stores.events, maxBatch: 5000 };
    global.gc?.();
    const profiling = (OPT.cpuProf || OPT.heapProf) && round === OPT.rounds - 1 ? new Session() : null;
    if (profiling) {
      profiling.connect();
      if (OPT.cpuProf) {
        await profiling.post('Profiler.enable');
        await profiling.post('Profiler.start');
      } else {
        await profiling.post('HeapProfiler.enable');
        await profiling.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
      }
    }
    const cpu0 = process.cpuUsage();
    const pg0 = postgresCpuSeconds();
    const m0 = machineBusySeconds();
    const dbQuery = (t, p) => sql.query(t, p);
    const dbName = db ? new URL(db.url).pathname.slice(1) : null;
    const db0 = db ? await databaseCpuSample(dbQuery, dbName) : null;
    const gc0 = gcMs;
    for (const k of Object.keys(gcKinds)) delete gcKinds[k];
    const t0 = performance.now();
    const quietLatencies = [];
    const eventLoopDelay = monitorEventLoopDelay({ resolution: 10 });
    eventLoopDelay.enable();
    let bursting = true;
    // As the fleet benchmark's quiet agent: a delta every interval whatever the acks, read through
    // its own stream's pipeline; latency from the delta's send to its commit.
    const quiet = (async () => {
      const pipeline = createDeltaPipeline(() => queue.stats().pending, { ...DELTA_PIPELINE_DEFAULTS, maxQueued: OPT.maxQueued, smallFlow: OPT.smallFlow });
      const commits = [];
      for (let next = performance.now(); bursting; next += OPT.quietInterval) {
        await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())));
        const sentAt = performance.now();
        const [bytes] = messages(quietId, quietSeq, 1);
        quietSeq++;
        await pipeline.room(1);
        const req = decodeConnectRequest(bytes);
        const { deltas, refusals } = await readDeltaBatch(quietId, req.msg.value.deltas, deps, log);
        const work = queue.submit({ agentId: quietId, deltas, refusals, alertRuleFor: () => null }).then(() => {
          quietLatencies.push(performance.now() - sentAt);
          if (process.env.QDBG && performance.now() - sentAt > 300) console.error('QUIET', Math.round(performance.now() - sentAt), 'at', Math.round(sentAt - t0), JSON.stringify(queue.stats()));
        });
        pipeline.add(work, 1);
        commits.push(work);
      }
      await Promise.all(commits);
    })();
    await Promise.all(
      ids.map(async (agentId, a) => {
        const pipeline = createDeltaPipeline(() => queue.stats().pending, { ...DELTA_PIPELINE_DEFAULTS, maxQueued: OPT.maxQueued, smallFlow: OPT.smallFlow });
        for (const bytes of msgs[a]) {
          const req = decodeConnectRequest(bytes);
          const n = req.msg.value.deltas.length;
          await pipeline.room(n);
          const { deltas, refusals } = await readDeltaBatch(agentId, req.msg.value.deltas, deps, log);
          const work = queue.submit({ agentId, deltas, refusals, alertRuleFor: () => null }).then((r) => {
            if (r.revoked) throw new Error('revoked');
          });
          pipeline.add(work, n);
        }
        await pipeline.drain();
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    bursting = false;
    eventLoopDelay.disable();
    await quiet;
    quietLatencies.sort((a, b) => a - b);
    const pct = (p) => Math.round(quietLatencies[Math.min(quietLatencies.length - 1, Math.floor((p / 100) * quietLatencies.length))] ?? NaN);
    const { user, system } = process.cpuUsage(cpu0);
    if (profiling) {
      const { profile } = await profiling.post(OPT.cpuProf ? 'Profiler.stop' : 'HeapProfiler.stopSampling');
      writeFileSync(OPT.cpuProf ?? OPT.heapProf, JSON.stringify(profile));
      profiling.disconnect();
    }
    const events = perAgent * OPT.agents;
    const dbCpu = db ? databaseCpuSpent(db0, await databaseCpuSample(dbQuery, dbName)) : null;
    const us = (s) => Number(((s * 1e6) / events).toFixed(1));
    results.push({ round, events, seconds: Number(seconds.toFixed(2)), eventsPerSecond: Math.round(events / seconds), quietCommitMs: { n: quietLatencies.length, p50: pct(50), p99: pct(99), max: Math.round(quietLatencies.at(-1) ?? NaN) }, eventLoopDelayMs: { p99: Math.round(eventLoopDelay.percentile(99) / 1e6), max: Math.round(eventLoopDelay.max / 1e6) }, cpuUsPerEvent: { node: us((user + system) / 1e6), gc: us((gcMs - gc0) / 1000), postgresThisDatabase: dbCpu ? us(dbCpu.backends) : null, postgresWriters: dbCpu ? us(dbCpu.background) : null, postgresAll: OPT.pglite ? null : us(postgresCpuSeconds() - pg0), machine: us(machineBusySeconds() - m0) }, gcMsByKind: Object.fromEntries(Object.entries(gcKinds).map(([k, v]) => [k, Math.round(v)])) });
    console.error(JSON.stringify(results.at(-1)));
  }
  const [{ n }] = await sql.query('select count(*)::int as n from file_events');
  if (n !== OPT.rounds * perAgent * OPT.agents + quietSeq) throw new Error(`${n} rows stored, expected ${OPT.rounds * perAgent * OPT.agents + quietSeq}`);
} finally {
  await sql.close();
  await db?.drop();
}
console.log(JSON.stringify({ ...OPT, load: loadavg().map((x) => Number(x.toFixed(2))), results }, null, 1));
