#!/usr/bin/env node
// Idle footprint benchmark: what a running agent costs when nothing changes. Starts a controller
// (fresh database on the local Postgres) and one agent as real processes (bench/fleet.mjs, as
// test/e2e does), applies a policy covering --root, waits until the baseline is committed, lets
// --settle seconds pass, then watches the agent for --seconds:
//
// - CPU: utime + stime of the agent process (every thread: /proc/PID/stat fields 14 and 15,
//   clock ticks from `getconf CLK_TCK`) at the start and the end of the idle window, and after
//   every second of it (cpuMsPerSecond).
// - RSS: VmRSS from /proc/PID/status once a second; max and last (and every sample, in MB).
//   VmHWM (the peak over the process's life, the baseline scan included), RssAnon, RssFile and
//   the thread count at the end, for comparison.
// - inotify watches: lines starting with "inotify wd:" in /proc/PID/fdinfo/* (one per watch),
//   against the directories under the root (`find ROOT -xdev -type d`, the agent does not leave
//   the root's file system by default).
// The agent is dist/agent/main.js run by node: the pid of the spawned node process is the agent.
// The controller's CPU over the same window is reported too.
//
// "Baseline committed": the agent logs "policy applied" after its scan (whose summary gives the
// number of deltas it recorded, seqs 1..N for a fresh agent), and the controller's committed seq
// (agents.committed_seq in Postgres, what `vigilctl agents show` prints as lastSeq) has reached N
// and not moved for 2 s. `agents show`'s delivery.queueLength is printed for reference only: the
// agent reports it with its status messages, which an ack does not trigger.
//
// usage: node bench/idle.mjs [--root /usr] [--seconds 60] [--settle 5] [--log-level info] [--agent-log FILE]
//   --agent-log: the agent's log lines are written to FILE at the end
// needs: npm run build; a Postgres server (DATABASE_URL, default postgres://root@127.0.0.1:5432/postgres)
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { cpuSeconds, options, say, sleep, startFleet } from './fleet.mjs';

const opt = options();
const root = resolve(opt.str('--root', '/usr'));
const seconds = opt.num('--seconds', 60);
const settle = opt.num('--settle', 5);
const logLevel = opt.str('--log-level', undefined);
const agentLog = opt.str('--agent-log', undefined);
const TARGET_RSS_MB = 150;
/** A "Vm…: N kB" line of /proc/PID/status, in MB. */
function statusMb(pid, field) {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : null;
}
function inotifyWatches(pid) {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
    let text;
    try {
      text = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    } catch {
      continue; // closed meanwhile
    }
    for (const line of text.split('\n')) if (line.startsWith('inotify wd:')) n++;
  }
  return n;
}
const mb = (x) => (x === null ? null : +x.toFixed(1));

const fleet = await startFleet({ prefix: 'vigil-bench-idle-', ...(logLevel ? { logLevel } : {}) });
let exitCode = 0;
try {
  const pid = fleet.agent.child.pid;
  say(`controller ${fleet.address}, agent ${fleet.agentId} (pid ${pid}); applying a policy over ${root}`);
  const t0 = Date.now();
  const { scan } = await fleet.applyPolicy([root]);
  say(`agent scan: ${JSON.stringify(scan && { filesScanned: scan.filesScanned, changes: scan.changes, errors: scan.errors })}; waiting for the controller to commit it`);
  const committed = await fleet.waitCommitted(scan?.changes ?? 1);
  const baselineSeconds = (Date.now() - t0) / 1000;
  const shown = await fleet.show();
  const { rows } = await fleet.pg.query(
    `select count(*)::int as events, count(*) filter (where file_type = 'regular')::int as regular,
            count(*) filter (where file_type = 'directory')::int as directories
       from file_events where agent_id = $1 and source = 'baseline'`,
    [fleet.agentId],
  );
  say(`baseline committed in ${baselineSeconds.toFixed(1)} s (${committed.committedSeq} deltas); settling ${settle} s, then ${seconds} s idle`);
  await sleep(settle * 1000);

  const ctlPid = fleet.controller.child.pid;
  const cpu0 = cpuSeconds(pid);
  const ctlCpu0 = cpuSeconds(ctlPid);
  const seqBefore = await fleet.committedSeq();
  const w0 = Date.now();
  const rss = [statusMb(pid, 'VmRSS')];
  const cpuSteps = []; // CPU ms per sample interval: spread evenly (timers) or front-loaded (settling)
  let cpuPrev = cpu0;
  while (Date.now() - w0 < seconds * 1000) {
    await sleep(Math.min(1000, w0 + seconds * 1000 - Date.now()));
    fleet.check();
    rss.push(statusMb(pid, 'VmRSS'));
    const c = cpuSeconds(pid);
    cpuSteps.push(Math.round((c - cpuPrev) * 1000));
    cpuPrev = c;
  }
  const wall = (Date.now() - w0) / 1000;
  const cpu = cpuSeconds(pid) - cpu0;
  const ctlCpu = cpuSeconds(ctlPid) - ctlCpu0;
  const watches = inotifyWatches(pid);
  const seqAfter = await fleet.committedSeq();
  const dirs = Number(execFileSync('sh', ['-c', 'find "$1" -xdev -type d 2>/dev/null | wc -l', 'sh', root], { encoding: 'utf8' }).trim());

  const summary = {
    benchmark: 'idle',
    date: new Date().toISOString(),
    cpus: cpus().length,
    node: process.version,
    root,
    seconds: +wall.toFixed(1),
    cpuSecondsIdle: +cpu.toFixed(2),
    cpuPercentIdle: +((cpu / wall) * 100).toFixed(2),
    cpuMsPerSecond: cpuSteps,
    rssMaxMB: mb(Math.max(...rss)),
    rssLastMB: mb(rss[rss.length - 1]),
    rssFirstMB: mb(rss[0]),
    // VmHWM is updated lazily by the kernel: it can read a little below a VmRSS sample.
    rssPeakLifetimeMB: mb(statusMb(pid, 'VmHWM')),
    // At the end: anonymous memory (heaps) against file pages (LMDB's map, code), and threads.
    rssAnonLastMB: mb(statusMb(pid, 'RssAnon')),
    rssFileLastMB: mb(statusMb(pid, 'RssFile')),
    threads: Number(/^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0),
    rssSamplesMB: rss.map((x) => Math.round(x)),
    watches,
    directoriesUnderRoot: dirs,
    filesBaselined: rows[0].regular,
    baseline: {
      pathsBaselined: rows[0].events,
      directories: rows[0].directories,
      // filesScanned is the agent's name: it counts every path (directories and symlinks too).
      agentScan: scan && { filesScanned: scan.filesScanned, changes: scan.changes, errors: scan.errors, bytes: scan.bytes, seconds: (Date.parse(scan.finishedAt) - Date.parse(scan.startedAt)) / 1000 },
      committedSeq: committed.committedSeq,
      secondsToCommitted: +baselineSeconds.toFixed(1),
      agentsShow: { lastSeq: shown.lastSeq, eventsStored: shown.eventsStored, refreshedCount: shown.refreshedCount, accounted: shown.accounted, queueLength: shown.delivery?.queueLength ?? null },
    },
    deltasDuringIdle: seqAfter - seqBefore,
    controllerCpuSecondsIdle: +ctlCpu.toFixed(2),
    targets: { rssMB: TARGET_RSS_MB, cpu: 'near zero', met: Math.max(...rss) < TARGET_RSS_MB },
  };
  console.log(JSON.stringify(summary, null, 2));
  process.stderr.write(
    `idle: ${root}, ${summary.filesBaselined} files baselined, ${watches} inotify watches (${dirs} directories); ` +
      `${seconds} s idle: CPU ${summary.cpuSecondsIdle} s (${summary.cpuPercentIdle} %), RSS max ${summary.rssMaxMB} MB, last ${summary.rssLastMB} MB (target < ${TARGET_RSS_MB}); ` +
      `${summary.targets.met ? 'RSS target met' : 'RSS target NOT met'}\n`,
  );
} catch (err) {
  say(`failed: ${err.stack ?? err}`);
  if (fleet.agent) say(`agent log tail:\n${fleet.agent.log().trim().split('\n').slice(-10).join('\n')}`);
  exitCode = 1;
} finally {
  if (agentLog && fleet.agent) writeFileSync(agentLog, fleet.agent.log());
  await fleet.close();
}
process.exit(exitCode);
