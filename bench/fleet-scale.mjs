#!/usr/bin/env node
// The controller at fleet scale (issue 16, part 6): one command, one run, every measure against a
// bare reference taken in the same run on the same machine.
//
//   a) the bare Postgres ceiling for the controller's rows (bench/pg-ceiling.mjs: multi-row VALUES,
//      unnest with text arrays, unnest with binary arrays, both inserts in one statement; 10
//      connections, a throwaway database with the controller's migrations), with the CPU per event
//      of its database's Postgres backends and of the client;
//   b) controller ingest: --burst-agents agents each sending --batch-delta batches as fast as
//      acks allow (at most --window deltas unacked, as the agent's outbox pump), --events in all;
//      CPU per event of the controller, of its database's Postgres backends, of the simulated
//      agents (their batches encoded before the clock starts) and of the rest of the machine;
//   c) during that burst, a quiet agent sending one delta every --quiet-interval ms: its ack
//      latency; and each bursting agent's p99 ack latency (median agent vs worst agent);
//   d) `rescan --all` and a policy push to --agents idle streams: from the admin RPC (the
//      operator certificate, as vigilctl) to the last agent receiving it, and to every rescan
//      result being recorded;
//   e) reconnect storm: the controller restarted with --agents streams connected, until all are
//      back, against a bare node:http2 mutual-TLS server (bench/fleet-scale/bare-http2.mjs)
//      restarted the same way, after the same down time, with the same clients;
//   f) idle RSS per stream, controller vs that bare server;
//   g) enrolment CPU: controller CPU-s per enrolment through the real Enroll RPC (the agent's
//      grpc-js client), --enrolments (200; 100 quick) one after another on one connection after
//      --enrol-warm-up (20) uncounted ones, then --enrolments-own-connection (100; 50 quick) each
//      on a new connection as agents enrol (TLS handshake and HTTP/2 session included); against
//      building and signing the same certificate with node:crypto in this process. No agent
//      streams are connected during g (it runs before b-f); the controller's idle CPU rate,
//      measured over --enrol-idle ms (2000) just before, is printed beside it, not subtracted.
//
// The controller is the real one (dist/controller/main.js) on the Postgres at DATABASE_URL
// (default postgres://postgres@127.0.0.1:5432/postgres; a throwaway database per run, dropped
// after). Simulated agents run in --procs worker processes (bench/fleet-scale/sim-agents.mjs),
// the quiet agent in one more: the controller's process is measured alone. Usage:
//
//   npm run bench:fleet                      # full: 10,000 agents, 100 bursting, 200,000 events
//   npm run bench:fleet -- --quick           # 1,000 agents, 20,000 events, under 2 minutes
//   node bench/fleet-scale.mjs --agents 2000 --skip-storm --cpu-prof --json out.json
//   node bench/fleet-scale.mjs --skip-ceiling --skip-enrol --skip-burst --skip-storm --skip-bare --cpu-prof-fanout
//     (the controller of d-f under node --cpu-prof: self time from each fan-out RPC to its last agent)
//
// See docs/benchmarks.md, "Fleet scale (issue 16)", for every option and what each figure means.
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { cpuSeconds, options, say, sleep } from './fleet.mjs';
import { measureCeiling } from './pg-ceiling.mjs';
import { registerAgents, signCpuMs, signerForHome } from './fleet-scale/certs.mjs';
import { adminClient, initHome, startController, tail } from './fleet-scale/controller.mjs';
import { distImport } from './fleet-scale/dist.mjs';
import { forkServer } from './fleet-scale/ipc.mjs';
import { checkFileLimit, databaseCpuSample, databaseCpuSpent, load, machineBusySeconds, now, postgresCpuSeconds, rss, until, withTimeout } from './fleet-scale/proc.mjs';
import { ascending, fmt, percentile, profileText, row, summarizeProfile, table } from './fleet-scale/report.mjs';

const { generateKeyPair, createCsr, parseJoinString, formatToken } = await distImport('pki/index.js');
const { createPgSql } = await distImport('controller/store/index.js');
const { createServerDatabase } = await distImport('test/support/databases.js');
const { createAgentClient } = await distImport('agent/transport/agent-client.js');
const { parsePolicyYaml } = await distImport('core/policy-schema.js');
const { policyToPb } = await distImport('proto/convert.js');

// ---------------------------------------------------------------------------------------------
// Options

const o = options();
const quick = o.has('--quick');
const OPT = {
  agents: o.num('--agents', quick ? 1000 : 10_000),
  burstAgents: o.num('--burst-agents', 100),
  events: o.num('--events', quick ? 20_000 : 200_000),
  batch: o.num('--batch', 500),
  window: o.num('--window', 5000),
  procs: o.num('--procs', 4),
  quietIntervalMs: o.num('--quiet-interval', 100),
  ceilingEvents: o.num('--ceiling-events', o.num('--events', quick ? 20_000 : 200_000)),
  ceilingWays: o.str('--ceiling-ways', 'values,unnest,unnest-binary,unnest-cte').split(','),
  ceilingConnections: o.num('--ceiling-connections', 10),
  enrolments: o.num('--enrolments', quick ? 100 : 200),
  enrolmentsFresh: o.num('--enrolments-own-connection', quick ? 50 : 100),
  enrolWarmUp: Math.max(1, o.num('--enrol-warm-up', 20)),
  enrolIdleMs: o.num('--enrol-idle', 2000),
  connectConcurrency: o.num('--connect-concurrency', 100),
  stormRounds: o.num('--storm-rounds', 1),
  settleMs: o.num('--settle', quick ? 2000 : 5000),
  reportDelayMs: o.num('--report-delay', quick ? 500 : 1000),
  jitter: o.str('--jitter', 'equal'),
  cpuProf: o.has('--cpu-prof'),
  cpuProfFanout: o.has('--cpu-prof-fanout'),
  logLevel: o.str('--log-level', process.env.VIGIL_LOG_LEVEL ?? 'info'),
  json: o.str('--json', null),
  keep: o.has('--keep'),
  skip: new Set(['ceiling', 'enrol', 'burst', 'fanout', 'storm', 'idle', 'bare'].filter((p) => o.has(`--skip-${p}`))),
};
if (o.has('--help')) {
  process.stdout.write(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n') + '\n');
  process.exit(0);
}
/** The agent's stream.stableAfterMs (agent/config.ts): a session this long resets the backoff. */
const STABLE_AFTER_MS = 30_000;
const ADMIN_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const eventsPerAgent = Math.ceil(OPT.events / OPT.burstAgents);
const fleetPhases = !OPT.skip.has('idle') && OPT.agents > 0;
const nprocs = availableParallelism();


// ---------------------------------------------------------------------------------------------
// Cleanup: processes, database and temporary directory, on any exit path

const cleanups = [];
const children = [];
let cleaning = null;
function cleanup() {
  cleaning ??= (async () => {
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (err) {
        say(`cleanup: ${err.message}`);
      }
    }
  })();
  return cleaning;
}
const onSignal = (sig) => {
  say(`${sig}: cleaning up`);
  void cleanup().finally(() => process.exit(130));
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

// ---------------------------------------------------------------------------------------------
// Set-up: controller home, database, controller, simulated agents' certificates and rows

const machine = { nproc: availableParallelism(), node: process.version, loadBefore: load(), loadAfter: null, phases: {} };
const rows = [];
const details = { options: { ...OPT, skip: [...OPT.skip] }, machine };

const root = mkdtempSync(join(tmpdir(), 'vigil-fleet-'));
cleanups.push(() => (OPT.keep ? say(`kept ${root}`) : rmSync(root, { recursive: true, force: true })));
const home = join(root, 'home');
const logFile = join(root, 'controller.log');
let ctl = null;
let ctlPort = 0;
let enrolPort = 0;

async function launchController(nodeArgs = []) {
  const listen = `127.0.0.1:${ctlPort}`;
  const c = await startController({ env, listen, enrolListen: `127.0.0.1:${enrolPort}`, nodeArgs, logFile });
  children.push(c.child);
  c.child.once('exit', (code, signal) => {
    if (c.expectedExit || cleaning) return;
    say(`the controller exited unexpectedly (${code ?? signal}); its log:\n${tail(logFile)}`);
  });
  ctlPort = Number(c.address.split(':').pop());
  enrolPort = Number(c.enrolAddress.split(':').pop());
  return c;
}
async function stopController() {
  if (!ctl) return 0;
  ctl.expectedExit = true;
  const ms = await ctl.stop();
  ctl = null;
  return ms;
}

const phase = (name) => {
  machine.phases[name] = load();
  say(`${name} (load ${machine.phases[name].join(' ')})`);
};

let env;
let sql;
let dbName;
let admin;
const workers = [];
let quietWorker = null;
const all = (cmd, args) => Promise.all(workers.map((w) => w.call(cmd, args)));

async function setUp() {
  phase('set-up');
  const fileLimit = checkFileLimit((fleetPhases ? OPT.agents : OPT.burstAgents) + 1024);
  const db = await createServerDatabase(ADMIN_URL);
  cleanups.push(() => db.drop());
  env = { ...process.env, VIGIL_HOME: home, DATABASE_URL: db.url, VIGIL_LOG_LEVEL: OPT.logLevel };
  delete env.SLACK_TOKEN; // alerts (none: no rule alerts) go to the log
  await initHome(env);
  ctl = await launchController();
  cleanups.push(stopController); // before the database is dropped
  machine.controllerStartMs = Math.round(ctl.listeningAt - ctl.spawnedAt);
  sql = createPgSql(db.url, { max: 8 });
  dbName = new URL(db.url).pathname.slice(1);
  cleanups.push(() => sql.close());
  const pgVersion = await sql.query('show server_version');
  Object.assign(machine, { fileLimit, postgres: pgVersion[0].server_version, controllerLog: logFile });
  admin = await adminClient(home, ctl.address);

  // One key pair for every simulated agent (RSA 2048, as agents make), certificates from the CA.
  const keys = await generateKeyPair();
  const init = { home, keyPem: keys.privateKeyPem, publicKeyPem: keys.publicKeyPem, backoff: { initialMs: 250, maxMs: 15_000, stableAfterMs: STABLE_AFTER_MS }, jitter: OPT.jitter, reportDelayMs: OPT.reportDelayMs };
  const simPath = fileURLToPath(new URL('./fleet-scale/sim-agents.mjs', import.meta.url));
  for (let i = 0; i < OPT.procs; i++) workers.push(forkServer(simPath, { name: `agents-${i}` }));
  quietWorker = forkServer(simPath, { name: 'quiet' });
  for (const w of [...workers, quietWorker]) {
    children.push(w.child);
    cleanups.push(() => w.kill());
  }
  await Promise.all([...workers, quietWorker].map((w) => w.call('init', init)));
  const share = (n, i) => Math.floor(n / OPT.procs) + (i < n % OPT.procs ? 1 : 0);
  const t0 = now();
  const issued = (
    await Promise.all([
      ...workers.map(async (w, i) => [
        ...(await w.call('issue', { n: fleetPhases ? share(OPT.agents, i) : 0, role: 'idle', hostPrefix: `sim-${i}` })),
        ...(await w.call('issue', { n: OPT.skip.has('burst') ? 0 : share(OPT.burstAgents, i), role: 'burst', hostPrefix: `burst-${i}` })),
      ]),
      quietWorker.call('issue', { n: OPT.skip.has('burst') ? 0 : 1, role: 'quiet', hostPrefix: 'quiet' }),
    ])
  ).flat();
  const issuedMs = now() - t0;
  await registerAgents(sql, issued, { keyFingerprint: signerForHome(home, keys.publicKeyPem).keyFingerprint });
  say(`${issued.length} simulated agents: certificates in ${(issuedMs / 1000).toFixed(1)} s, enrolled in the database in ${((now() - t0 - issuedMs) / 1000).toFixed(1)} s`);
  details.setUp = { agents: issued.length, certificatesMs: Math.round(issuedMs), controllerStartMs: machine.controllerStartMs };
  return keys;
}

// ---------------------------------------------------------------------------------------------
// a) The Postgres ceiling

let ceilingBest = null;
async function ceiling() {
  phase('a) Postgres ceiling');
  const results = await measureCeiling({ adminUrl: ADMIN_URL, events: OPT.ceilingEvents, batch: OPT.batch, agents: OPT.burstAgents, connections: OPT.ceilingConnections, ways: OPT.ceilingWays });
  details.ceiling = results;
  ceilingBest = results.reduce((a, b) => (b.eventsPerSecond > a.eventsPerSecond ? b : a));
  for (const r of results) say(`  ${r.strategy}: ${fmt.perSecond(r.eventsPerSecond)} (CPU µs/event: its database's backends ${r.cpuUsPerEvent.postgresThisDatabase}, shared writers ${r.cpuUsPerEvent.postgresWriters}, all postgres ${r.cpuUsPerEvent.postgres}, pg client ${r.cpuUsPerEvent.client}, machine ${r.cpuUsPerEvent.machine})`);
}

// ---------------------------------------------------------------------------------------------
// g) Enrolment CPU

/**
 * Controller CPU (ms) per call of f over n calls, and wall ms per call; and the controller's idle
 * CPU rate over the same wall time (measured before), which is what the figure would hold of work
 * that is not enrolment's (timers, sweeps; no agent streams are connected during this phase).
 */
async function controllerCpuEach(n, f, idleMsPerS) {
  const cpu0 = cpuSeconds(ctl.pid);
  const t0 = now();
  for (let i = 0; i < n; i++) await f(i);
  const wallMs = now() - t0;
  const cpuMs = ((cpuSeconds(ctl.pid) - cpu0) * 1000) / n;
  return { cpuMs, wallMs: wallMs / n, idleMs: (idleMsPerS * wallMs) / 1000 / n };
}

async function enrolment(keys) {
  phase('g) enrolment CPU');
  const n = OPT.enrolments;
  const fresh = OPT.enrolmentsFresh;
  const warm = OPT.enrolWarmUp;
  const tok = await admin.createToken({ ttlSeconds: 900, uses: n + fresh + warm + 1 });
  const token = formatToken(parseJoinString(tok.joinString).token);
  const csrPem = createCsr(keys.privateKeyPem, keys.publicKeyPem, 'fleet-bench');
  const caPem = readFileSync(join(home, 'ca.pem'), 'utf8');
  const client = createAgentClient({ address: ctl.enrolAddress, caPem });
  try {
    // Not counted: the connection, and the first calls while V8 compiles the path (the controller
    // here has just started; one enrolling a fleet runs it compiled).
    for (let i = 0; i < warm; i++) await client.enroll({ token, csrPem, hostname: `enrol-warm-up-${i}` });
    // The controller's own CPU rate with nothing to do, just before: what the figures would hold
    // that is not enrolment's. Printed, not subtracted (it is a few ms a second).
    const idle0 = cpuSeconds(ctl.pid);
    const idleT0 = now();
    await sleep(OPT.enrolIdleMs);
    const idleMsPerS = ((cpuSeconds(ctl.pid) - idle0) * 1e6) / (now() - idleT0);
    // Enroll RPCs one after another on one connection: the enrol service, Connect and HTTP/2.
    const rpc = await controllerCpuEach(n, (i) => client.enroll({ token, csrPem, hostname: `enrol-${i}` }), idleMsPerS);
    // Each on a connection of its own, as every agent enrols: its TLS handshake and HTTP/2 session too.
    const own = await controllerCpuEach(fresh, async (i) => {
      const c = createAgentClient({ address: ctl.enrolAddress, caPem });
      try {
        await c.enroll({ token, csrPem, hostname: `enrol-own-${i}` });
      } finally {
        c.close();
      }
    }, idleMsPerS);
    const bareMs = signCpuMs(signerForHome(home, keys.publicKeyPem), n);
    details.enrolment = { enrolments: n, warmUp: warm, idleMsPerS, controllerCpuMsEach: rpc.cpuMs, wallMsEach: rpc.wallMs, idleMsEach: rpc.idleMs, ownConnection: fresh ? { enrolments: fresh, controllerCpuMsEach: own.cpuMs, wallMsEach: own.wallMs, idleMsEach: own.idleMs } : null, bareSignCpuMsEach: bareMs };
    // The idle rate's share is printed, not subtracted.
    const value = (r) => `${r.cpuMs.toFixed(1)} ms (wall ${r.wallMs.toFixed(0)} ms; idle ${idleMsPerS.toFixed(1)} ms/s would be ${r.idleMs.toFixed(2)} ms of it)`;
    rows.push(
      row(`enrolment, controller CPU per Enroll RPC (${n} one at a time on one connection, after ${warm} uncounted)`, value(rpc), {
        reference: `${bareMs.toFixed(1)} ms: same certificate, node:crypto signature, in-process`,
        ratio: rpc.cpuMs / bareMs,
        target: '≤ 10 ms CPU',
        pass: rpc.cpuMs <= 10,
      }),
    );
    if (fresh) {
      rows.push(
        row(`  the same, each on a new TLS connection as an agent enrols (${fresh}; handshake included)`, value(own), {
          reference: `${(own.cpuMs - rpc.cpuMs).toFixed(1)} ms more than on one connection`,
          target: '≤ 10 ms CPU',
          pass: own.cpuMs <= 10,
        }),
      );
    }
  } finally {
    client.close();
  }
}

// ---------------------------------------------------------------------------------------------
// b), c) Ingest burst with a quiet agent beside it

async function burst() {
  const profDir = join(root, 'cpu-prof');
  if (OPT.cpuProf) {
    await stopController();
    ctl = await launchController(['--cpu-prof', '--cpu-prof-dir', profDir]);
  }
  phase('b) c) ingest burst');
  await Promise.all([all('connect', { role: 'burst', address: ctl.address, concurrency: 50 }), quietWorker.call('connect', { role: 'quiet', address: ctl.address, concurrency: 1 })]);
  const prepared = await all('burstPrepare', { role: 'burst', eventsPerAgent, batch: OPT.batch });
  const total = prepared.reduce((n, p) => n + p.events, 0);
  await quietWorker.call('quietStart', { role: 'quiet', intervalMs: OPT.quietIntervalMs });
  await sleep(300);
  const simPids = [...workers, quietWorker].map((w) => w.child.pid);
  const simCpu = () => simPids.reduce((s, pid) => s + cpuSeconds(pid), 0);
  const cpu0 = cpuSeconds(ctl.pid);
  const pg0 = postgresCpuSeconds();
  const sim0 = simCpu();
  const machine0 = machineBusySeconds();
  const dbCpu0 = await databaseCpuSample((t, p) => sql.query(t, p), dbName);
  const tGo = now();
  const monoGo = process.hrtime.bigint() / 1000n; // CLOCK_MONOTONIC µs: the clock of a .cpuprofile's timestamps
  const perAgent = (await withTimeout(all('burstRun', { role: 'burst', window: OPT.window }), 30 * 60_000, 'the burst to be acked')).flat();
  const tEnd = Math.max(...perAgent.map((a) => a.lastAck));
  const monoEnd = process.hrtime.bigint() / 1000n;
  const cpu = cpuSeconds(ctl.pid) - cpu0;
  const pgCpu = postgresCpuSeconds() - pg0;
  const simCpuS = simCpu() - sim0;
  const machineCpu = machineBusySeconds() - machine0;
  const dbCpu = databaseCpuSpent(dbCpu0, await databaseCpuSample((t, p) => sql.query(t, p), dbName));
  const quiet = await quietWorker.call('quietStop', { role: 'quiet', waitMs: 30_000 });
  const seconds = (tEnd - tGo) / 1000;
  const rate = total / seconds;

  // Nothing lost: every event of the burst is a history row.
  const ids = perAgent.map((a) => a.agentId);
  const [{ n: stored }] = await sql.query('select count(*)::int as n from file_events where agent_id = any($1::text[])', [ids]);

  const p99s = ascending(perAgent.map((a) => percentile(ascending(a.latencies), 99)));
  const medianP99 = percentile(p99s, 50);
  const worstP99 = p99s[p99s.length - 1];
  const inBurst = quiet.samples.filter((s) => s.sentAt >= tGo && s.sentAt <= tEnd);
  const quietLat = ascending(inBurst.filter((s) => s.ms != null).map((s) => s.ms));
  const unacked = inBurst.filter((s) => s.ms == null).length;
  const q50 = percentile(quietLat, 50);
  const q99 = percentile(quietLat, 99);
  details.burst = {
    agents: perAgent.length,
    events: total,
    stored,
    seconds,
    eventsPerSecond: rate,
    controllerCpuSeconds: cpu,
    controllerCpuUsPerEvent: (cpu * 1e6) / total,
    postgresCpuSeconds: pgCpu,
    monotonicUs: [Number(monoGo), Number(monoEnd)],
    simulatedAgentsCpuSeconds: simCpuS,
    machineBusyCpuSeconds: machineCpu,
    controllerDatabaseCpuSeconds: dbCpu,
    cpuUsPerEvent: { controller: (cpu * 1e6) / total, postgres: (pgCpu * 1e6) / total, postgresThisDatabase: (dbCpu.backends * 1e6) / total, postgresWriters: (dbCpu.background * 1e6) / total, simulatedAgents: (simCpuS * 1e6) / total, rest: ((machineCpu - cpu - pgCpu - simCpuS) * 1e6) / total, machine: (machineCpu * 1e6) / total },
    agentP99Ms: { median: medianP99, worst: worstP99, all: p99s.map(Math.round) },
    quiet: { samples: inBurst.length, unacked, p50: q50, p99: q99, max: quietLat[quietLat.length - 1] ?? null, error: quiet.error, timeline: inBurst.map((s) => [Math.round(s.sentAt - tGo), s.ms == null ? null : Math.round(s.ms)]) },
  };
  const ref = ceilingBest?.eventsPerSecond;
  rows.push(
    row(`ingest, ${perAgent.length} agents × ${OPT.batch}-delta batches, ${fmt.int(total)} events`, `${fmt.perSecond(rate)} (${seconds.toFixed(1)} s; ${fmt.int(stored)} rows stored)`, {
      reference: ref ? `${fmt.perSecond(ref)} (${ceilingBest.strategy}, ${OPT.ceilingConnections} connections)` : '— (--skip-ceiling)',
      ratio: ref ? rate / ref : null,
      target: '≥ 0.7× the ceiling',
      pass: ref ? rate / ref >= 0.7 && stored === total : null,
    }),
    row(`  controller CPU during the burst`, `${cpu.toFixed(1)} CPU-s (${((cpu * 1e6) / total).toFixed(0)} µs/event)`),
    row(`  Postgres CPU: the controller's database's backends; shared writers; all postgres processes`, `${((dbCpu.backends * 1e6) / total).toFixed(0)} µs/event; ${((dbCpu.background * 1e6) / total).toFixed(0)} µs/event; ${pgCpu.toFixed(1)} CPU-s (${((pgCpu * 1e6) / total).toFixed(0)} µs/event, anyone's)`),
    row(`  simulated agents' CPU; the rest of the machine`, `${simCpuS.toFixed(1)} CPU-s (${((simCpuS * 1e6) / total).toFixed(0)} µs/event); ${(machineCpu - cpu - pgCpu - simCpuS).toFixed(1)} CPU-s (machine busy ${machineCpu.toFixed(1)} of ${((nprocs * (tEnd - tGo)) / 1000).toFixed(1)} CPU-s)`),
    row(`quiet agent (1 delta / ${OPT.quietIntervalMs} ms) ack latency during the burst, p50 / p99`, `${fmt.ms(q50)} / ${fmt.ms(q99)} (${quietLat.length} acked${unacked ? `, ${unacked} NOT acked` : ''})`, {
      target: 'p99 ≤ 1 s',
      pass: q99 != null && q99 <= 1000 && unacked === 0,
    }),
    row(`bursting agents' ack p99: median agent / worst agent`, `${fmt.ms(medianP99)} / ${fmt.ms(worstP99)}`, {
      ratio: worstP99 / medianP99,
      target: 'worst ≤ 3× median',
      pass: worstP99 / medianP99 <= 3,
    }),
  );
  await Promise.all([all('disconnect', { role: 'burst' }), quietWorker.call('disconnect', { role: 'quiet' })]);
  if (OPT.cpuProf) {
    await stopController(); // the profile is written as the process exits
    const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
    if (file) {
      // Kept after the run (the temporary directory is removed): open it in Chrome DevTools.
      const kept = join(tmpdir(), `vigil-fleet-controller-burst-${process.pid}.cpuprofile`);
      copyFileSync(join(profDir, file), kept);
      details.profile = summarizeProfile(kept);
      details.profile.burstMs = Math.round(tEnd - tGo);
    } else say('no CPU profile was written');
  }
}

// ---------------------------------------------------------------------------------------------
// f) Idle streams and their memory, d) fan-out, e) reconnect storm: against the controller, then
// the same clients against the bare server

const fleetTimeoutMs = Math.max(120_000, OPT.agents * 60);

/** Connects every idle agent to address; returns handshakes/s of that first connection. */
async function connectFleet(address) {
  const t0 = now();
  await withTimeout(all('connect', { role: 'idle', address, concurrency: Math.ceil(OPT.connectConcurrency / OPT.procs) }), fleetTimeoutMs, `${OPT.agents} agents to connect to ${address}`);
  return OPT.agents / ((now() - t0) / 1000);
}

/** Waits until every idle agent has been welcomed since `since`; returns the last welcome and connection attempts. */
async function waitReconnected(since) {
  return until(
    'every agent to reconnect',
    async () => {
      const w = await all('welcomed', { role: 'idle', since });
      const count = w.reduce((n, x) => n + x.count, 0);
      if (count < OPT.agents) return undefined;
      const times = ascending((await all('welcomed', { role: 'idle', since, times: true })).flatMap((x) => x.times));
      return { last: Math.max(...w.map((x) => x.last)), p90: percentile(times, 90), attempts: w.reduce((n, x) => n + x.attempts, 0) };
    },
    fleetTimeoutMs,
    200,
  );
}

/**
 * Waits until every idle agent's session has lasted the agent's stableAfterMs (30 s), so that each
 * storm finds the agents with their backoff reset, as after a controller that ran a while.
 */
async function sessionsStable() {
  const last = Math.max(...(await all('welcomed', { role: 'idle', since: 0 })).map((w) => w.lastWelcome));
  await sleep(Math.max(0, last + STABLE_AFTER_MS + 1000 - now()));
}

/** Connection attempts the idle agents have made so far. */
const attempts = async () => (await all('welcomed', { role: 'idle', since: 0 })).reduce((n, x) => n + x.attempts, 0);

/** One storm: down time, listening → last welcome, handshakes/s, connection attempts. */
function stormRound({ stopMs, tKill, listeningAt, back, attempts0 }) {
  const lastWelcomeAfterListenMs = back.last - listeningAt;
  // 90 % back: less at the mercy of the last few clients whose SYN was dropped (listen backlog).
  const p90AfterListenMs = back.p90 - listeningAt;
  return {
    stopMs,
    downMs: listeningAt - tKill,
    lastWelcomeAfterListenMs,
    perSecond: OPT.agents / (lastWelcomeAfterListenMs / 1000),
    p90AfterListenMs,
    p90PerSecond: (0.9 * OPT.agents) / (p90AfterListenMs / 1000),
    attempts: back.attempts - attempts0,
  };
}

/** The round with the median rate (the lower middle one for an even count). */
const medianRound = (rounds) => [...rounds].sort((a, b) => a.perSecond - b.perSecond)[Math.floor((rounds.length - 1) / 2)];

async function fleetOnController() {
  await stopController();
  const profDir = join(root, 'cpu-prof-fanout');
  ctl = await launchController(OPT.cpuProfFanout ? ['--cpu-prof', '--cpu-prof-dir', profDir] : []);
  phase(`f) idle streams: ${OPT.agents} to the controller`);
  await sleep(OPT.settleMs);
  const rss0 = rss(ctl.pid);
  const connectRate = await connectFleet(ctl.address);
  await sleep(OPT.settleMs);
  const rss1 = rss(ctl.pid);
  details.idle = { controller: { rssBefore: rss0, rssAfter: rss1, perStream: (rss1 - rss0) / OPT.agents, connectPerSecond: connectRate } };

  if (!OPT.skip.has('fanout')) await fanout();
  if (OPT.cpuProfFanout) {
    // The profile is written as the process exits; the agents come back to a new controller.
    const tKill = now();
    await stopController();
    const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
    if (file && details.rescan) {
      const kept = join(tmpdir(), `vigil-fleet-controller-fanout-${process.pid}.cpuprofile`);
      copyFileSync(join(profDir, file), kept);
      details.fanoutProfiles = { rescan: summarizeProfile(kept, 15, details.rescan.monotonicUs), policy: summarizeProfile(kept, 15, details.policy.monotonicUs) };
    } else say('no fan-out CPU profile was written');
    ctl = await launchController();
    await waitReconnected(tKill);
    await sessionsStable();
  }
  if (!OPT.skip.has('storm')) {
    const rounds = [];
    for (let r = 1; r <= OPT.stormRounds; r++) {
      if (r > 1) await sessionsStable(); // connect() started every agent's backoff afresh for round 1
      phase(`e) reconnect storm: controller restart with ${OPT.agents} streams (round ${r} of ${OPT.stormRounds})`);
      const attempts0 = await attempts();
      const tKill = now();
      const stopMs = await stopController();
      ctl = await launchController();
      const back = await waitReconnected(tKill);
      rounds.push(stormRound({ stopMs, tKill, listeningAt: ctl.listeningAt, back, attempts0 }));
    }
    details.storm = { controllerRounds: rounds, controller: medianRound(rounds) };
  }
  await all('disconnect', { role: 'idle' });
}

async function fanout() {
  phase(`d) rescan and policy fan-out to ${OPT.agents} streams`);
  const waitMs = Math.max(60_000, OPT.agents * 10);
  // CPU seconds of the controller, the simulated agents and Postgres from an RPC to its last
  // agent: who the fan-out's time goes to (the agents stand in for other machines).
  const simPids = workers.map((w) => w.child.pid);
  const cpuNow = () => ({ controller: cpuSeconds(ctl.pid), agents: simPids.reduce((s, pid) => s + cpuSeconds(pid), 0), postgres: postgresCpuSeconds(), machine: machineBusySeconds() });
  const cpuSince = (c0) => Object.fromEntries(Object.entries(cpuNow()).map(([k, v]) => [k, Number((v - c0[k]).toFixed(2))]));
  // Rescan --all: RPC → last agent received the command → every scan report recorded.
  let c0 = cpuNow();
  const mono = () => Number(process.hrtime.bigint() / 1000n); // CLOCK_MONOTONIC µs: a .cpuprofile's clock
  let m0 = mono();
  const t0 = now();
  const res = await admin.rescan({ all: true });
  const rpcMs = now() - t0;
  const delivered = res.targets.filter((t) => t.delivered).length;
  const times = [];
  await until('every agent to receive its rescan command', async () => {
    for (const r of await all('received', { role: 'idle', kind: 'command' })) times.push(...r.times);
    return times.length >= OPT.agents ? true : undefined;
  }, waitMs, 50).catch((err) => say(err.message));
  const lastMs = times.length ? Math.max(...times) - t0 : null;
  const cpuToLast = cpuSince(c0);
  const rescanMono = [m0, m0 + Math.round(((lastMs ?? 0) + 200) * 1000)];
  // Agents not connected (the burst's, the quiet one) keep their command queued until they connect:
  // the results to wait for are those of the streams the command was delivered to.
  const ids = res.targets.filter((t) => t.delivered).map((t) => t.commandId);
  const resultsMs = await until('every rescan result to be recorded', async () => {
    const [{ n }] = await sql.query('select count(*)::int as n from commands where id = any($1::text[]) and completed_at is not null', [ids]);
    return n >= ids.length ? now() - t0 : undefined;
  }, waitMs, 100).catch((err) => (say(err.message), null));
  const sorted = ascending(times.map((t) => t - t0));
  details.rescan = { targets: res.targets.length, delivered, received: times.length, rpcMs, firstMs: sorted[0], p50Ms: percentile(sorted, 50), lastMs, resultsMs, cpuSecondsToLast: cpuToLast, monotonicUs: rescanMono };

  // Policy push: RPC → last agent received the new version.
  const policy = policyToPb({ version: 0, ...parsePolicyYaml('rules:\n  - name: fleet-bench\n    paths: [/srv/app]\n', 'fleet-bench') });
  c0 = cpuNow();
  m0 = mono();
  const p0 = now();
  const applied = await admin.applyPolicy({ policy });
  const prpcMs = now() - p0;
  const version = Number(applied.version);
  const ptimes = await until('every agent to receive the policy', async () => {
    const t = (await all('received', { role: 'idle', kind: 'policy', version })).flatMap((r) => r.times);
    return t.length >= OPT.agents ? t : undefined;
  }, waitMs, 50);
  const pcpu = cpuSince(c0);
  const psorted = ascending(ptimes.map((t) => t - p0));
  details.policy = { version, pushedTo: applied.pushedTo, received: ptimes.length, rpcMs: prpcMs, firstMs: psorted[0], p50Ms: percentile(psorted, 50), lastMs: psorted[psorted.length - 1], cpuSecondsToLast: pcpu, monotonicUs: [m0, m0 + Math.round((psorted[psorted.length - 1] + 200) * 1000)] };
}

/** CPU seconds to the last agent, by party. */
const cpuText = (c) => `CPU-s to the last agent: controller ${c.controller}, agents ${c.agents}, Postgres ${c.postgres}, machine ${c.machine}`;

let bare = null;
async function startBare() {
  const w = forkServer(fileURLToPath(new URL('./fleet-scale/bare-http2.mjs', import.meta.url)), { name: 'bare-http2', args: [home] });
  children.push(w.child);
  cleanups.push(() => w.kill());
  return w;
}

async function fleetOnBare() {
  phase(`f) idle streams: ${OPT.agents} to the bare http2 server`);
  bare = await startBare();
  const { port } = await bare.call('start', { host: '127.0.0.1', port: 0 });
  await sleep(OPT.settleMs);
  const rss0 = rss(bare.pid);
  const connectRate = await connectFleet(`127.0.0.1:${port}`);
  await sleep(OPT.settleMs);
  const rss1 = rss(bare.pid);
  details.idle.bare = { rssBefore: rss0, rssAfter: rss1, perStream: (rss1 - rss0) / OPT.agents, connectPerSecond: connectRate };

  if (!OPT.skip.has('storm') && details.storm) {
    const rounds = [];
    for (const [i, { downMs }] of details.storm.controllerRounds.entries()) {
      if (i > 0) await sessionsStable();
      phase(`e) reconnect storm: bare server restart with ${OPT.agents} streams (round ${i + 1} of ${OPT.stormRounds})`);
      const attempts0 = await attempts();
      const next = await startBare(); // forked now, listens after the controller's down time
      await next.call('stats');
      const tKill = now();
      await bare.kill();
      await sleep(Math.max(0, tKill + downMs - now()));
      const { listeningAt } = await next.call('start', { host: '127.0.0.1', port });
      bare = next;
      const back = await waitReconnected(tKill);
      rounds.push(stormRound({ stopMs: 0, tKill, listeningAt, back, attempts0 }));
    }
    Object.assign(details.storm, { bareRounds: rounds, bare: medianRound(rounds) });
  }
  await all('disconnect', { role: 'idle' });
  await bare.kill();
}

/** "; rounds 55, 71, 72/s" when there was more than one (the row shows the median round). */
const roundsText = (rounds) => (rounds?.length > 1 ? `; median of rounds ${rounds.map((r) => Math.round(r.perSecond)).join(', ')}/s` : '');

function fleetRows() {
  const n = fmt.int(OPT.agents);
  const { idle, rescan, policy, storm } = details;
  if (rescan) {
    rows.push(
      row(`rescan --all → last agent received, ${n} streams`, `${fmt.s(rescan.lastMs)} (RPC ${fmt.s(rescan.rpcMs)}, p50 ${fmt.s(rescan.p50Ms)}; ${fmt.int(rescan.received)} of ${fmt.int(rescan.targets)} received; ${cpuText(rescan.cpuSecondsToLast)})`, {
        target: '≤ 2 s at 10k',
        pass: rescan.received >= OPT.agents && rescan.lastMs <= 2000,
      }),
      row(`rescan --all → every result recorded`, fmt.s(rescan.resultsMs), { target: 'all visible', pass: rescan.resultsMs != null }),
    );
  }
  if (policy) {
    rows.push(
      row(`policy push → last agent received, ${n} streams`, `${fmt.s(policy.lastMs)} (RPC ${fmt.s(policy.rpcMs)}, p50 ${fmt.s(policy.p50Ms)}; ${cpuText(policy.cpuSecondsToLast)})`, {
        target: '≤ 2 s at 10k',
        pass: policy.received >= OPT.agents && policy.lastMs <= 2000,
      }),
    );
  }
  if (storm?.controller) {
    const c = storm.controller;
    const b = storm.bare;
    rows.push(
      row(`reconnect storm, ${n} streams: handshakes/s from listening to the last welcome`, `${fmt.perSecond(c.perSecond)} (${fmt.s(c.lastWelcomeAfterListenMs)}; down ${fmt.s(c.downMs)}, ${fmt.int(c.attempts)} connection attempts)${roundsText(storm.controllerRounds)}`, {
        reference: b ? `${fmt.perSecond(b.perSecond)} (${fmt.s(b.lastWelcomeAfterListenMs)}; down ${fmt.s(b.downMs)}, ${fmt.int(b.attempts)} attempts)${roundsText(storm.bareRounds)}` : '— (--skip-bare)',
        ratio: b ? c.perSecond / b.perSecond : null,
        target: '≥ 0.7× bare',
        pass: b ? c.perSecond / b.perSecond >= 0.7 : null,
      }),
      row(`  the same storm, listening → 90 % welcomed`, `${fmt.perSecond(c.p90PerSecond)} (${fmt.s(c.p90AfterListenMs)})`, {
        reference: b ? `${fmt.perSecond(b.p90PerSecond)} (${fmt.s(b.p90AfterListenMs)})` : '—',
        ratio: b ? c.p90PerSecond / b.p90PerSecond : null,
      }),
    );
  }
  if (idle?.controller) {
    const c = idle.controller;
    const b = idle.bare;
    const at10k = c.rssBefore + c.perStream * 10_000;
    rows.push(
      row(`idle memory: controller RSS per stream, ${n} streams`, `${fmt.kb(c.perStream)} (${fmt.mb(c.rssBefore)} → ${fmt.mb(c.rssAfter)})`, {
        reference: b ? `${fmt.kb(b.perStream)} (${fmt.mb(b.rssBefore)} → ${fmt.mb(b.rssAfter)})` : '— (--skip-bare)',
        ratio: b ? c.perStream / b.perStream : null,
        target: `≤ 1 GB at 10k${OPT.agents === 10_000 ? '' : ` (extrapolated: ${fmt.mb(at10k)})`}`,
        pass: at10k <= 1024 ** 3,
      }),
      row(`first connection of ${n} agents (${OPT.connectConcurrency} at a time): handshakes/s`, fmt.perSecond(c.connectPerSecond), {
        reference: b ? fmt.perSecond(b.connectPerSecond) : '—',
        ratio: b ? c.connectPerSecond / b.connectPerSecond : null,
      }),
    );
  }
}

// ---------------------------------------------------------------------------------------------

let failed = null;
try {
  const keys = await setUp();
  if (!OPT.skip.has('ceiling')) await ceiling();
  if (!OPT.skip.has('enrol')) await enrolment(keys);
  if (!OPT.skip.has('burst')) await burst();
  if (fleetPhases) {
    await fleetOnController();
    if (!OPT.skip.has('bare')) await fleetOnBare();
  }
} catch (err) {
  failed = err;
  say(`the benchmark failed: ${err.stack ?? err.message}`);
  say(`controller log (${logFile}):\n${tail(logFile, 15)}`);
} finally {
  machine.loadAfter = load();
  await cleanup();
}

fleetRows(); // what the fleet phases measured before any failure
if (ceilingBest) rows.unshift(row(`Postgres ceiling: ${details.ceiling.map((r) => `${r.strategy} ${fmt.perSecond(r.eventsPerSecond)}`).join(', ')}`, `${ceilingBest.strategy}: its database's backends ${ceilingBest.cpuUsPerEvent.postgresThisDatabase} µs/event, shared writers ${ceilingBest.cpuUsPerEvent.postgresWriters}, pg client ${ceilingBest.cpuUsPerEvent.client}`, { reference: `${fmt.perSecond(ceilingBest.eventsPerSecond)} (${ceilingBest.strategy})` }));
const out = [
  `Fleet scale, ${new Date().toISOString()}: ${machine.nproc} cores, Node ${machine.node}, Postgres ${machine.postgres ?? '?'}; load average before ${machine.loadBefore.join(' ')}, after ${machine.loadAfter.join(' ')}`,
  `phases (load average at start): ${Object.entries(machine.phases).map(([k, v]) => `${k}: ${v[0]}`).join('; ')}`,
  '',
  table(rows),
];
if (details.profile) out.push('', `(burst: ${fmt.s(details.profile.burstMs)})`, profileText(details.profile));
if (details.fanoutProfiles) for (const [what, p] of Object.entries(details.fanoutProfiles)) out.push('', `(${what}: RPC → last agent + 0.2 s)`, profileText(p));
process.stdout.write(`${out.join('\n')}\n`);
if (OPT.json) writeFileSync(OPT.json, `${JSON.stringify({ rows, ...details }, null, 2)}\n`);
process.off('SIGINT', onSignal);
process.off('SIGTERM', onSignal);
process.exit(failed ? 1 : 0);
