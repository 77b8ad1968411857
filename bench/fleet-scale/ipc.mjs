// Request/reply over a forked child's IPC channel: the parent calls child.call(cmd, args), the
// child serves handlers[cmd](args). Both ends are the benchmark's own processes.
import { fork } from 'node:child_process';
import { once } from 'node:events';

/** In a forked child: serves requests from the parent until it disconnects. */
export function serve(handlers) {
  process.on('message', async ({ id, cmd, args }) => {
    try {
      const handler = handlers[cmd];
      if (!handler) throw new Error(`unknown command ${cmd}`);
      const result = await handler(args ?? {});
      process.send({ id, ok: true, result });
    } catch (err) {
      process.send({ id, ok: false, error: err instanceof Error ? `${err.message}\n${err.stack}` : String(err) });
    }
  });
  // The parent went away (crash, SIGKILL): nothing left to serve.
  process.on('disconnect', () => process.exit(0));
}

/**
 * Forks a module with an IPC channel; returns { child, pid, call(cmd, args), kill(), exited }.
 * stderr is passed through with a prefix; a call fails when the child exits before replying.
 */
export function forkServer(modulePath, { name, execArgv = [], env = process.env, args = [] } = {}) {
  const child = fork(modulePath, args, { execArgv, env, stdio: ['ignore', 'inherit', 'pipe', 'ipc'], serialization: 'advanced' });
  child.stderr.on('data', (d) => {
    for (const line of d.toString().split('\n')) if (line.trim()) process.stderr.write(`  [${name}] ${line}\n`);
  });
  let nextId = 1;
  const pending = new Map();
  child.on('message', (m) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.ok) p.resolve(m.result);
    else p.reject(new Error(`${name}: ${m.error}`));
  });
  const exited = once(child, 'exit').then(([code, signal]) => {
    for (const p of pending.values()) p.reject(new Error(`${name} exited (${code ?? signal}) before replying`));
    pending.clear();
    return { code, signal };
  });
  return {
    child,
    name,
    pid: child.pid,
    exited,
    call(cmd, args) {
      if (child.exitCode !== null || child.signalCode !== null) return Promise.reject(new Error(`${name} has exited`));
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        child.send({ id, cmd, args });
      });
    },
    /** SIGTERM, then SIGKILL after graceMs; resolves when it has exited. */
    async kill(graceMs = 5_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    },
  };
}
