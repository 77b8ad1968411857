#!/usr/bin/env node
// Real-time latency benchmark: how long from a file change on disk to its row committed in
// Postgres. Starts a controller (fresh database on the local Postgres) and one agent as real
// processes (bench/fleet.mjs, as test/e2e does), applies a policy covering a temporary directory,
// waits for the baseline, then writes --rate changes per second for --seconds over --files files
// (create, rewrite with new content, every --delete-every'th change of a file a delete; a deleted
// file's slot goes on under a new name). For each change it records the wall-clock time the write
// returned (Date.now(), same machine clock as the controller's committed_at) and the state it left.
// Afterwards it reads file_events straight from Postgres and matches every write to a row.
//
// Matching rule. A write W to path P is matched to the first row for P, in seq order, whose
// state is W's or a later write's to P (sha256 of the content; kind 'deleted' for a delete) and
// whose committed_at is not before W started. Every write leaves a state no other write to that
// path leaves (the content carries the write's number; a path is deleted at most once), so the
// row's state names the write the agent read. A row with a later write's state is the agent
// coalescing W with what followed (one 50 ms window, or the writes that piled up while a check
// ran): that row is the first commit that reflects W, and W's latency is measured to it. Rows
// whose state is no write's (a read that raced a rewrite: file truncated, not yet written) are
// counted as `unexplained` and never matched. Latency = committed_at - the time the write returned.
//
// committed_at is the controller's clock taken in the ingest transaction before its inserts, so
// the row becomes visible to readers a little later (the rest of that transaction).
//
// Prints the figures as JSON on stdout and a one-line summary on stderr (progress on stderr too).
// Exits 1 when a write is left unmatched.
//
// usage: node bench/latency.mjs [--rate 200] [--seconds 60] [--files 50] [--bytes 512]
//          [--delete-every 10] [--drain 30] [--log-level info] [--raw FILE] [--agent-log FILE]
// --agent-log FILE: the agent's log lines are written to FILE at the end.
// --raw FILE: one JSON line per write (its times, the matched row's seq, detected_at, committed_at).
// VIGIL_CAPTURE=0 runs the agent without fanotify write capture (to compare its CPU: cpu.agentSeconds
// is the agent's utime + stime over the writing and the drain).
// needs: npm run build; a Postgres server (DATABASE_URL, default postgres://root@127.0.0.1:5432/postgres)
import { createHash } from 'node:crypto';
import { unlinkSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { cpuSeconds, options, percentile, poll, say, sleep, startFleet } from './fleet.mjs';

const opt = options();
const rate = opt.num('--rate', 200);
const seconds = opt.num('--seconds', 60);
const files = opt.num('--files', 50);
const bytes = opt.num('--bytes', 512);
const deleteEvery = Math.max(2, opt.num('--delete-every', 10));
const drainSeconds = opt.num('--drain', 30);
const logLevel = opt.str('--log-level', undefined);
const rawFile = opt.str('--raw', undefined);
const agentLog = opt.str('--agent-log', undefined);
const TARGET_P50 = 50;
const TARGET_P99 = 250;

const sha256 = (data) => createHash('sha256').update(data).digest('hex');
const round = (x, d = 1) => (x === null || x === undefined ? null : +x.toFixed(d));
const dist = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return {
    p50: percentile(s, 50),
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    max: s.length ? s[s.length - 1] : null,
    min: s.length ? s[0] : null,
    mean: s.length ? round(s.reduce((a, b) => a + b, 0) / s.length) : null,
  };
};

/** Rows for paths under dir committed after seq, oldest first. */
async function eventsAfter(fleet, seq, dir) {
  const { rows } = await fleet.pg.query(
    `select seq::float8 as seq, path_text, kind, source, encode(sha256, 'hex') as sha,
            extract(epoch from detected_at)::float8 * 1000 as detected,
            extract(epoch from committed_at)::float8 * 1000 as committed
       from file_events where agent_id = $1 and seq > $2 and starts_with(path_text, $3) order by seq`,
    [fleet.agentId, seq, `${dir}/`],
  );
  return rows;
}

/**
 * Matches writes to rows (the rule at the top). Returns, per write, the matched row or null, and
 * the rows whose state is no write's.
 */
function match(writes, events) {
  const writesByPath = new Map();
  for (const w of writes) (writesByPath.get(w.path) ?? writesByPath.set(w.path, []).get(w.path)).push(w);
  const eventsByPath = new Map();
  for (const e of events) (eventsByPath.get(e.path_text) ?? eventsByPath.set(e.path_text, []).get(e.path_text)).push(e);
  const matched = new Map();
  const unexplained = [];
  for (const [path, ws] of writesByPath) {
    const stateIndex = new Map(ws.map((w, i) => [w.expect, i])); // unique per path, by construction
    const es = (eventsByPath.get(path) ?? []).map((e) => ({ e, idx: stateIndex.get(e.kind === 'deleted' ? 'deleted' : e.sha) ?? -1 }));
    for (const x of es) if (x.idx < 0) unexplained.push(x.e);
    let from = 0; // the first candidate row only moves forward as the write index grows
    ws.forEach((w, i) => {
      while (from < es.length && es[from].idx < i) from++;
      let j = from;
      while (j < es.length && (es[j].idx < i || es[j].e.committed < w.start)) j++;
      if (j < es.length) matched.set(w, { event: es[j].e, coalesced: es[j].idx > i });
    });
  }
  for (const [path, es] of eventsByPath) if (!writesByPath.has(path)) unexplained.push(...es);
  return { matched, unexplained };
}

const fleet = await startFleet({ prefix: 'vigil-bench-latency-', ...(logLevel ? { logLevel } : {}) });
let exitCode = 0;
try {
  const dir = fleet.dir('watched');
  writeFileSync(join(dir, 'baseline-marker'), 'present before the policy\n');
  say(`controller ${fleet.address}, agent ${fleet.agentId}; applying a policy over ${dir}`);
  const { scan } = await fleet.applyPolicy([dir]);
  await fleet.waitCommitted(scan?.changes ?? 1, { timeoutMs: 120_000 });
  // The watcher is up once "policy applied" is logged; a probe proves the real-time path end to end.
  const probe = join(dir, 'probe');
  writeFileSync(probe, 'probe\n');
  await poll('the probe to be committed', async () => (await fleet.pg.query('select 1 from file_events where agent_id = $1 and path_text = $2', [fleet.agentId, probe])).rowCount > 0, 30_000, 50);
  const baselineSeq = await fleet.committedSeq();

  // The writer: change k is due at start + k / rate; each slot (file) takes every files'th change.
  const total = Math.round(rate * seconds);
  const slots = Array.from({ length: files }, (_, s) => ({ gen: 0, present: false, count: s % deleteEvery }));
  const writes = [];
  const lags = [];
  const pad = 'x'.repeat(bytes);
  say(`writing ${total} changes (${rate}/s for ${seconds} s) over ${files} files`);
  const agentCpu0 = cpuSeconds(fleet.agent.child.pid);
  const controllerCpu0 = cpuSeconds(fleet.controller.child.pid);
  const start = Date.now() + 50;
  for (let k = 0; k < total; ) {
    if (k % 20 === 0) fleet.check();
    const due = start + (k * 1000) / rate;
    const now = Date.now();
    if (now < due) {
      await sleep(due - now);
      continue;
    }
    lags.push(now - due);
    const slot = slots[k % files];
    const path = join(dir, `s${k % files}-g${slot.gen}.txt`);
    let op;
    let expect;
    let t0;
    if (!slot.present || slot.count % deleteEvery !== deleteEvery - 1) {
      op = slot.present ? 'modify' : 'create';
      const head = `${op} #${k} ${path}\n`; // never cut: it makes the state unique
      const content = head + pad.slice(0, Math.max(0, bytes - head.length));
      expect = sha256(content);
      t0 = Date.now();
      writeFileSync(path, content);
      slot.present = true;
    } else {
      op = 'delete';
      expect = 'deleted';
      t0 = Date.now();
      unlinkSync(path);
      slot.present = false;
      slot.gen++;
    }
    const written = Date.now();
    slot.count++;
    writes.push({ k, path, op, expect, start: t0, written });
    k++;
  }
  const writerSeconds = (Date.now() - start) / 1000;
  say(`writer done in ${writerSeconds.toFixed(1)} s; waiting for every write to be committed`);

  // Drain: read the rows until every write is matched, or nothing new came for --drain seconds.
  let events = [];
  let result;
  let lastNew = Date.now();
  for (;;) {
    fleet.check();
    const more = await eventsAfter(fleet, events.length ? events[events.length - 1].seq : baselineSeq, dir);
    if (more.length) {
      events = events.concat(more);
      lastNew = Date.now();
    }
    result = match(writes, events);
    if (result.matched.size === writes.length) break;
    if (Date.now() - lastNew > drainSeconds * 1000) {
      say(`gave up: nothing new for ${drainSeconds} s with ${writes.length - result.matched.size} writes unmatched`);
      break;
    }
    await sleep(250);
  }
  // CPU of the writing and the drain after it, in seconds; per 1,000 changes written.
  const cpu = { agentSeconds: cpuSeconds(fleet.agent.child.pid) - agentCpu0, controllerSeconds: cpuSeconds(fleet.controller.child.pid) - controllerCpu0 };

  const latencies = [];
  const detects = [];
  const delivers = new Map(); // per row: detected → committed
  let coalesced = 0;
  let negative = 0;
  const unmatched = [];
  for (const w of writes) {
    const m = result.matched.get(w);
    if (!m) {
      unmatched.push({ k: w.k, path: w.path, op: w.op, expect: w.expect, written: new Date(w.written).toISOString() });
      continue;
    }
    const l = m.event.committed - w.written;
    if (l < 0) negative++;
    latencies.push(l);
    detects.push(m.event.detected - w.written);
    delivers.set(m.event.seq, m.event.committed - m.event.detected);
    if (m.coalesced) coalesced++;
  }
  if (rawFile) {
    const lines = writes.map((w) => {
      const e = result.matched.get(w)?.event;
      return JSON.stringify({ k: w.k, path: w.path, op: w.op, start: w.start, written: w.written, seq: e?.seq ?? null, detected: e?.detected ?? null, committed: e?.committed ?? null });
    });
    writeFileSync(rawFile, lines.join('\n') + '\n');
  }
  const sources = {};
  for (const e of events) sources[e.source] = (sources[e.source] ?? 0) + 1;
  const lat = dist(latencies);
  const summary = {
    benchmark: 'latency',
    date: new Date().toISOString(),
    cpus: cpus().length,
    node: process.version,
    rate,
    seconds,
    files,
    bytes,
    deleteEvery,
    writes: {
      total: writes.length,
      create: writes.filter((w) => w.op === 'create').length,
      modify: writes.filter((w) => w.op === 'modify').length,
      delete: writes.filter((w) => w.op === 'delete').length,
      achievedPerSecond: round(writes.length / writerSeconds),
      writerLagMs: { p99: percentile([...lags].sort((a, b) => a - b), 99), max: Math.max(...lags) },
    },
    matched: result.matched.size,
    unmatched: unmatched.length,
    latencyMs: lat,
    // Where the time goes: written → detected_at (the agent read the state, after its 50 ms
    // window) and, per row, detected_at → committed_at (queue, gRPC, ingest).
    detectMs: dist(detects),
    deliverMs: dist([...delivers.values()]),
    rows: { total: events.length, bySource: sources, unexplained: result.unexplained.length },
    writesCoalesced: coalesced,
    cpu: { agentSeconds: round(cpu.agentSeconds, 2), controllerSeconds: round(cpu.controllerSeconds, 2), agentPer1000: round((cpu.agentSeconds * 1000) / writes.length, 3), writeCapture: process.env.VIGIL_CAPTURE !== '0' },
    negativeLatencies: negative,
    targets: { p50Ms: TARGET_P50, p99Ms: TARGET_P99, met: lat.p50 !== null && lat.p50 <= TARGET_P50 && lat.p99 <= TARGET_P99 && unmatched.length === 0 },
    ...(unmatched.length ? { unmatchedSample: unmatched.slice(0, 10) } : {}),
    ...(result.unexplained.length ? { unexplainedSample: result.unexplained.slice(0, 5).map((e) => ({ seq: e.seq, path: e.path_text, kind: e.kind, sha256: e.sha })) } : {}),
  };
  console.log(JSON.stringify(summary, null, 2));
  process.stderr.write(
    `latency: ${summary.matched}/${writes.length} writes matched, ${summary.unmatched} unmatched; ` +
      `p50 ${lat.p50} ms (target <= ${TARGET_P50}), p90 ${lat.p90} ms, p99 ${lat.p99} ms (target <= ${TARGET_P99}), max ${lat.max} ms; ` +
      `${summary.targets.met ? 'targets met' : 'targets NOT met'}\n`,
  );
  if (unmatched.length) exitCode = 1;
} catch (err) {
  say(`failed: ${err.stack ?? err}`);
  if (fleet.agent) say(`agent log tail:\n${fleet.agent.log().trim().split('\n').slice(-10).join('\n')}`);
  exitCode = 1;
} finally {
  if (agentLog && fleet.agent) writeFileSync(agentLog, fleet.agent.log());
  await fleet.close();
}
process.exit(exitCode);
