// A controller and one agent, started as real processes the way test/e2e/e2e.test.ts starts them,
// for the real-time benchmarks (bench/latency.mjs, bench/idle.mjs): `vigilctl init` in a
// temporary VIGIL_HOME, the controller on 127.0.0.1:0 with DATABASE_URL pointing at a fresh
// database on the local Postgres, a one-use token, `vigil-agent enrol`, `vigil-agent run`, and a
// policy applied with `vigilctl policies apply -f`. close() kills both processes, drops the
// database and removes the temporary directory; it is idempotent and also runs on SIGINT/SIGTERM.
//
// Uses the compiled test helpers (dist/test/support/*.js) and binaries (dist/): needs `npm run build`.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, '..', 'dist');
for (const f of ['agent/main.js', 'controller/main.js', 'controller/vigilctl/main.js', 'test/support/processes.js', 'test/support/databases.js']) {
  if (!existsSync(join(dist, f))) throw new Error(`dist/${f} is missing: run \`npm run build\` first`);
}
const { BIN, runOk, startDaemon, waitFor } = await import(pathToFileURL(join(dist, 'test/support/processes.js')).href);
const { createServerDatabase } = await import(pathToFileURL(join(dist, 'test/support/databases.js')).href);

/**
 * Polls check until it returns a value other than undefined/false. Unlike waitFor (whose check
 * errors are retried until its timeout), an error thrown by check ends the wait at once.
 */
export async function poll(what, check, timeoutMs, intervalMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** The Postgres server's admin URL: a database is created on it per run and dropped after. */
export const ADMIN_URL = process.env.DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/postgres';

/** Argument parsing shared by the benchmarks: `--name value` numbers and strings. */
export function options(argv = process.argv.slice(2)) {
  const has = (name) => argv.includes(name);
  const str = (name, fallback) => (has(name) ? argv[argv.indexOf(name) + 1] ?? fallback : fallback);
  const num = (name, fallback) => {
    const v = Number(str(name, undefined));
    return has(name) && Number.isFinite(v) ? v : fallback;
  };
  return { has, str, num };
}

const clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** utime + stime of a process (every thread), in seconds: /proc/PID/stat fields 14 and 15. */
export function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
  return (Number(f[11]) + Number(f[12])) / clkTck;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const say = (msg) => process.stderr.write(`[${new Date().toISOString().slice(11, 23)}] ${msg}\n`);

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** The agent's (or controller's) JSON log lines with this msg. */
export function logLines(daemon, msg) {
  const out = [];
  for (const line of daemon.log().split('\n')) {
    if (!line.includes(`"msg":"${msg}"`)) continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      // a line cut by the pipe's chunking: the next read completes it
    }
  }
  return out;
}

/** True while the daemon's process runs (exitCode stays null when a signal ended it). */
export const running = (daemon) => !!daemon && daemon.child.exitCode === null && daemon.child.signalCode === null;

/** Stops a daemon: SIGTERM, then SIGKILL after graceMs. */
async function stop(daemon, graceMs = 10_000) {
  const child = daemon?.child;
  if (!running(daemon)) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/**
 * Starts controller and agent; the agent is connected but has no policy yet (applyPolicy).
 * logLevel: VIGIL_LOG_LEVEL for both (default info, as in production).
 */
export async function startFleet({ prefix = 'vigil-bench-', logLevel = process.env.VIGIL_LOG_LEVEL ?? 'info' } = {}) {
  const root = mkdtempSync(join(tmpdir(), prefix));
  const home = join(root, 'home');
  const agentState = join(root, 'agent');
  const fleet = {
    root,
    env: null,
    address: '',
    agentId: '',
    controller: null,
    agent: null,
    dbUrl: '',
    pg: null,
    dropDb: null,
    closed: false,
  };

  let closing = null;
  fleet.close = () =>
    (closing ??= (async () => {
      fleet.closed = true;
      const errors = [];
      const attempt = async (what, fn) => {
        try {
          await fn();
        } catch (err) {
          errors.push(`${what}: ${err.message}`);
        }
      };
      await attempt('stop agent', () => stop(fleet.agent));
      await attempt('stop controller', () => stop(fleet.controller));
      await attempt('close pg client', async () => fleet.pg?.end());
      await attempt('drop database', async () => fleet.dropDb?.());
      await attempt('remove temp dir', async () => rmSync(root, { recursive: true, force: true }));
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.off('exit', onExit);
      if (errors.length) say(`cleanup: ${errors.join('; ')}`);
    })());
  const onSignal = (sig) => {
    say(`${sig}: cleaning up`);
    void fleet.close().finally(() => process.exit(130));
  };
  // Last resort when the process exits without close(): no async work possible, kill the children.
  const onExit = () => {
    for (const d of [fleet.agent, fleet.controller]) if (running(d)) d.child.kill('SIGKILL');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', onExit);

  try {
    const db = await createServerDatabase(ADMIN_URL);
    fleet.dbUrl = db.url;
    fleet.dropDb = db.drop;
    fleet.env = { ...process.env, VIGIL_HOME: home, DATABASE_URL: db.url, VIGIL_LOG_LEVEL: logLevel };
    delete fleet.env.SLACK_TOKEN; // alerts (none: no rule asks for them) would go to the log

    await runOk(BIN.vigilctl, ['init'], fleet.env);
    fleet.controller = startDaemon(BIN.controller, ['--listen', '127.0.0.1:0', '--enrol-listen', '127.0.0.1:0'], fleet.env);
    fleet.address = JSON.parse(await fleet.controller.firstLine).listening;
    fleet.ctl = (...args) => runOk(BIN.vigilctl, ['--controller', fleet.address, ...args], fleet.env);

    const { joinString } = JSON.parse(await fleet.ctl('tokens', 'create', '--json', '--ttl', '10m', '--uses', '1'));
    const enrolled = await runOk(BIN.agent, ['enrol', joinString, '--state-dir', agentState], fleet.env);
    fleet.agentId = /agent ([0-9a-f-]{36})/.exec(enrolled)[1];
    fleet.agent = startDaemon(BIN.agent, ['run', '--state-dir', agentState], fleet.env);
    fleet.agent.child.once('exit', (code, signal) => {
      if (!fleet.closed) say(`the agent exited (${code ?? signal}); its last log lines:\n${fleet.agent.log().trim().split('\n').slice(-5).join('\n')}`);
    });
    fleet.controller.child.once('exit', (code, signal) => {
      if (!fleet.closed) say(`the controller exited (${code ?? signal}); its last log lines:\n${fleet.controller.log().trim().split('\n').slice(-5).join('\n')}`);
    });
    await waitFor('the agent to connect', async () => {
      const agents = JSON.parse(await fleet.ctl('agents', 'ls', '--json'));
      return agents.some((a) => a.id === fleet.agentId && a.connected);
    }, 30_000, 250);

    fleet.pg = new pg.Client({ connectionString: db.url });
    await fleet.pg.connect();
  } catch (err) {
    await fleet.close();
    throw err;
  }

  /** Throws when the run was interrupted or a daemon is gone. */
  fleet.check = () => {
    if (fleet.closed) throw new Error('interrupted');
    if (!running(fleet.agent)) throw new Error('the agent exited');
    if (!running(fleet.controller)) throw new Error('the controller exited');
  };

  /** `vigilctl agents show ID --json`. */
  fleet.show = async () => JSON.parse(await fleet.ctl('agents', 'show', fleet.agentId, '--json'));

  /**
   * Applies a policy with one rule over these paths; resolves when the agent has logged
   * "policy applied" for it (its scan is done and its watcher started; the deltas may still be
   * on their way to the controller). Returns the version and the agent's scan summary.
   */
  fleet.applyPolicy = async (paths, { timeoutMs = 30 * 60_000 } = {}) => {
    const file = join(root, `policy-${Date.now()}.yaml`);
    writeFileSync(file, `rules:\n  - name: bench\n    paths: [${paths.map((p) => JSON.stringify(p)).join(', ')}]\n`);
    const { version } = JSON.parse(await fleet.ctl('policies', 'apply', '-f', file, '--json'));
    const applied = await poll(
      `the agent to apply policy v${version}`,
      () => {
        fleet.check();
        return logLines(fleet.agent, 'policy applied').find((l) => l.version === version);
      },
      timeoutMs,
      200,
    );
    const scan = logLines(fleet.agent, 'scan finished').filter((l) => l.policyVersion === version).pop() ?? null;
    return { version, applied, scan };
  };

  /** The controller's committed seq for the agent, straight from Postgres. */
  fleet.committedSeq = async () => Number((await fleet.pg.query('select committed_seq from agents where id = $1', [fleet.agentId])).rows[0]?.committed_seq ?? 0);

  /**
   * Waits until the controller has committed at least `seq` (the agent's seqs so far) and the
   * committed seq has not moved for stableMs. Prints progress every 10 s.
   */
  fleet.waitCommitted = async (seq, { timeoutMs = 30 * 60_000, stableMs = 2_000 } = {}) => {
    const t0 = Date.now();
    let last = -1;
    let since = Date.now();
    let shown = Date.now();
    for (;;) {
      fleet.check();
      const now = await fleet.committedSeq();
      if (now !== last) {
        last = now;
        since = Date.now();
      }
      if (now >= seq && Date.now() - since >= stableMs) return { committedSeq: now, seconds: (Date.now() - t0) / 1000 };
      if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms: committed seq ${now}, waiting for ${seq}`);
      if (Date.now() - shown > 10_000) {
        shown = Date.now();
        say(`baseline: ${now} of ${seq} deltas committed`);
      }
      await sleep(250);
    }
  };

  /** A directory inside the run's temporary directory. */
  fleet.dir = (name) => {
    const d = join(root, name);
    mkdirSync(d, { recursive: true });
    return d;
  };

  return fleet;
}
