// The real controller as a process of its own, started the way bench/fleet.mjs and test/e2e start
// it (dist/controller/main.js, VIGIL_HOME made by `vigilctl init`, DATABASE_URL), but with node
// flags of our choosing (--cpu-prof) and its log written straight to a file, and the admin API
// client vigilctl uses (dist/controller/vigilctl/admin-client.js: the home's operator certificate).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { distImport, DIST } from './dist.mjs';
import { join } from 'node:path';

const CONTROLLER = join(DIST, 'controller/main.js');
const VIGILCTL = join(DIST, 'controller/vigilctl/main.js');
const now = () => performance.timeOrigin + performance.now();

/** `vigilctl init` in env.VIGIL_HOME. */
export async function initHome(env) {
  const child = spawn(process.execPath, [VIGILCTL, 'init'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const [code] = await once(child, 'exit');
  if (code !== 0) throw new Error(`vigilctl init exited ${code}: ${err}`);
}

/**
 * Starts the controller; resolves once it printed its listening line. The returned object has
 * pid, address, enrolAddress, spawnedAt and listeningAt (ms, shared clock), stop() and running().
 */
export async function startController({ env, listen, enrolListen, nodeArgs = [], logFile }) {
  const logFd = openSync(logFile, 'a');
  const spawnedAt = now();
  const child = spawn(process.execPath, [...nodeArgs, CONTROLLER, '--listen', listen, '--enrol-listen', enrolListen], { env, stdio: ['ignore', 'pipe', logFd] });
  closeSync(logFd);
  const exited = once(child, 'exit');
  const line = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    child.once('exit', (code, signal) => reject(new Error(`the controller exited (${code ?? signal}) before listening; see ${logFile}:\n${tail(logFile)}`)));
  });
  const listeningAt = now();
  const { listening, enrol } = JSON.parse(line);
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    child,
    pid: child.pid,
    address: listening,
    enrolAddress: enrol,
    spawnedAt,
    listeningAt,
    running,
    /** SIGTERM (the controller shuts down gracefully), SIGKILL after graceMs; resolves with the stop's duration. */
    async stop(graceMs = 30_000) {
      if (!running()) return 0;
      const t0 = now();
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
      return now() - t0;
    },
  };
}

/** The last lines of a log file. */
export function tail(file, lines = 8) {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** The admin API as vigilctl reaches it, with the home's operator certificate. */
export async function adminClient(home, address) {
  const { createAdminClient } = await distImport('controller/vigilctl/admin-client.js');
  const { vigilHome } = await distImport('controller/home.js');
  return (await createAdminClient(vigilHome(home), address)).client;
}
