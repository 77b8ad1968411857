// Process and machine measurements for the fleet benchmark: RSS, CPU of Postgres, the open-file
// limit, and two small waiting helpers. Times are ms on the shared clock (now()).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** ms since the epoch with sub-ms resolution; the same clock in every process on this machine. */
export const now = () => performance.timeOrigin + performance.now();

/** The load average, rounded. */
export const load = () => loadavg().map((x) => Number(x.toFixed(2)));

/** RSS of a process in bytes (VmRSS). */
export function rss(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]) * 1024;
}

/**
 * Checks the open-file limit (this process's, which its children inherit; Node raises the soft
 * limit to the hard one at start) against `need`; throws saying what to raise.
 */
export function checkFileLimit(need) {
  const m = /Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/.exec(readFileSync('/proc/self/limits', 'utf8'));
  const soft = m[1] === 'unlimited' ? Infinity : Number(m[1]);
  if (soft < need) {
    throw new Error(`open-file limit ${soft} is below the ${need} this run needs (one descriptor per stream in the controller and in the bare server): raise it, e.g. \`ulimit -n ${need}\` (hard limit now ${m[2]}), or run fewer --agents`);
  }
  return soft;
}

export async function withTimeout(promise, ms, what) {
  let t;
  const timeout = new Promise((_, reject) => {
    t = setTimeout(() => reject(new Error(`timed out after ${Math.round(ms / 1000)} s: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(t);
  }
}

/** Polls check() until it returns a value other than undefined; fails after ms. */
export async function until(what, check, ms, everyMs = 100) {
  const deadline = now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (now() > deadline) throw new Error(`timed out after ${Math.round(ms / 1000)} s waiting for ${what}`);
    await sleep(everyMs);
  }
}

const clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/**
 * CPU seconds of every process named postgres, with the CPU of their children that exited
 * (cutime + cstime: backends that ended count in the postmaster's). Ours and anyone else's.
 */
export function postgresCpuSeconds() {
  let s = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'postgres') continue;
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
      s += (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / clkTck;
    } catch {
      // gone meanwhile
    }
  }
  return s;
}

/**
 * CPU seconds the whole machine spent busy so far (every CPU's user, nice, system, irq, softirq
 * and steal from /proc/stat; idle and iowait left out): with the per-process figures, what the
 * rest of the machine (other sessions' work, the kernel) took over the same interval.
 */
export function machineBusySeconds() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return (user + nice + system + irq + softirq + steal) / clkTck;
}

/** utime + stime of a process in seconds, or null when it is gone. */
function processCpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / clkTck;
  } catch {
    return null;
  }
}

/**
 * CPU seconds of the Postgres backends connected to one database (`query(text, params)` runs SQL
 * as a superuser on the same server), and of the server's shared background writers (WAL writer,
 * checkpointer, background writer), from /proc. Other sessions' databases on the same server are
 * left out: on a shared machine "every postgres process" counts their tests too. Take one before
 * and one after, then databaseCpuSpent(before, after).
 */
export async function databaseCpuSample(query, datname) {
  const rows = await query(`select pid, backend_type from pg_stat_activity where datname = $1 or backend_type in ('walwriter', 'checkpointer', 'background writer')`, [datname]);
  const backends = new Map();
  let background = 0;
  for (const r of rows) {
    const s = processCpuSeconds(r.pid);
    if (s === null) continue;
    if (r.backend_type === 'client backend') backends.set(r.pid, s);
    else background += s;
  }
  return { backends, background };
}

/** CPU seconds between two samples: the database's backends (a backend that started between them counts whole), the shared writers. */
export function databaseCpuSpent(before, after) {
  let backends = 0;
  for (const [pid, s] of after.backends) backends += s - (before.backends.get(pid) ?? 0);
  return { backends, background: after.background - before.background };
}
