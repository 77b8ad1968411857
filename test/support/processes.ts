import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';

/** The compiled entry points of the three programs (tests run from dist/). */
export const BIN = {
  agent: fileURLToPath(new URL('../../agent/main.js', import.meta.url)),
  controller: fileURLToPath(new URL('../../controller/main.js', import.meta.url)),
  vigilctl: fileURLToPath(new URL('../../controller/vigilctl/main.js', import.meta.url)),
} as const;

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a program to completion. */
export async function runCli(bin: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  const child = spawn(process.execPath, [bin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

/** Runs a program that must succeed; returns its stdout. */
export async function runOk(bin: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<string> {
  const r = await runCli(bin, args, env);
  if (r.code !== 0) throw new Error(`${bin} ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

export interface Daemon {
  readonly child: ChildProcess;
  /** Everything it wrote to stderr so far (its JSON log). */
  log(): string;
  /** Resolves with the first stdout line. */
  firstLine: Promise<string>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts a long-running program (controller, agent). */
export function startDaemon(bin: string, args: readonly string[], env: NodeJS.ProcessEnv): Daemon {
  const child = spawn(process.execPath, [bin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const firstLine = new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      const nl = stdout.indexOf('\n');
      if (nl >= 0) resolve(stdout.slice(0, nl));
    });
    child.once('exit', (code) => reject(new Error(`${bin} exited ${code} before printing a line: ${stderr}`)));
  });
  firstLine.catch(() => undefined);
  return {
    child,
    log: () => stderr,
    firstLine,
    async kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill(signal);
      await exited;
    },
  };
}

/** Polls until check returns a value other than undefined/false, or fails after timeoutMs. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
