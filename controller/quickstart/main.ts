#!/usr/bin/env node
import { DEFAULT_LIMITS, defineRule } from '../../core/policy-schema.js';
/**
 * `npm start`: Vigil on one machine, on the embedded default (PGlite). Starts a controller and one
 * local agent as real processes, enrols the agent with a real token, applies a policy that watches
 * the given directories (default .vigil/watched), and prints every change and alert as it is
 * committed. Everything lives under .vigil/ in the repository (VIGIL_HOME=.vigil/home).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { policyToPb } from '../../proto/convert.js';
import { vigilHome } from '../home.js';
import { initHome } from '../init.js';
import { createAdminClient } from '../vigilctl/admin-client.js';

const repo = resolve(fileURLToPath(new URL('../../../', import.meta.url)));
const bin = (p: string) => fileURLToPath(new URL(`../../${p}`, import.meta.url));

const program = new Command('vigil-quickstart')
  .argument('[dirs...]', 'directories to watch', [resolve(repo, '.vigil/watched')])
  .option('--listen <host:port>', 'controller mutual-TLS listener', '127.0.0.1:8443')
  .option('--enrol-listen <host:port>', 'controller enrolment listener', '127.0.0.1:8444')
  .parse();
const dirs = (program.processedArgs[0] as string[]).map((d) => resolve(d));
const opts = program.opts<{ listen: string; enrolListen: string }>();

const homeDir = process.env.VIGIL_HOME || resolve(repo, '.vigil/home');
const agentDir = resolve(repo, '.vigil/agent');
const env = { ...process.env, VIGIL_HOME: homeDir };
const children: ChildProcess[] = [];
const say = (line: string) => process.stdout.write(`${line}\n`);

function stop(code: number): void {
  for (const c of children) c.kill('SIGTERM');
  setTimeout(() => process.exit(code), 500).unref();
}
process.once('SIGINT', () => stop(0));
process.once('SIGTERM', () => stop(0));

function run(args: string[], name: string): ChildProcess {
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  child.once('exit', (code, signal) => {
    if (signal !== 'SIGTERM') {
      say(`${name} exited (${code ?? signal}); stopping`);
      stop(1);
    }
  });
  return child;
}

/** Turns the controller's JSON log into one readable line per committed change or alert. */
function showLog(child: ChildProcess): void {
  createInterface({ input: child.stderr! }).on('line', (line) => {
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return void say(line);
    }
    const time = new Date(entry.time as number).toISOString().slice(11, 23);
    if (entry.msg === 'change recorded') {
      const sha = entry.sha256 ? ` sha256:${(entry.sha256 as string).slice(0, 16)}` : '';
      say(`${time}  ${String(entry.kind).padEnd(10)} ${entry.path as string}${sha}  (seq ${entry.seq as number}, ${entry.source as string})`);
    } else if (entry.component === 'alerts' && entry.alert) {
      say(`${time}  ALERT      ${entry.msg as string}`);
    } else if ((entry.level as number) >= 50) {
      say(`${time}  ERROR      ${entry.msg as string}${entry.err ? `: ${(entry.err as { message?: string }).message}` : ''}`);
    }
  });
}

/** The agent's warnings and errors, one line each: its problems are never hidden (changes show through the controller). */
function showAgentProblems(child: ChildProcess): void {
  createInterface({ input: child.stderr! }).on('line', (line) => {
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return void say(`agent: ${line}`);
    }
    const level = entry.level as number;
    if (level < 40) return;
    const time = new Date(entry.time as number).toISOString().slice(11, 23);
    const err = entry.err as { message?: string } | undefined;
    const detail = err?.message ?? (entry.reason as string | undefined);
    say(`${time}  AGENT ${level >= 50 ? 'ERROR' : 'WARN '} ${entry.msg as string}${detail ? `: ${detail}` : ''}`);
  });
}

for (const d of dirs) mkdirSync(d, { recursive: true });
const home = vigilHome(homeDir);
if (!existsSync(home.caCert)) {
  await initHome(home, {
    serverNames: ['localhost', '127.0.0.1'],
    trustDomain: 'vigil.local',
    address: opts.listen,
    enrolAddress: opts.enrolListen,
    operatorName: 'admin',
    operatorLifetimeMs: 365 * 86_400_000,
  });
  say(`created a CA and operator credential in ${homeDir}`);
}

const controller = run([bin('controller/main.js'), '--listen', opts.listen, '--enrol-listen', opts.enrolListen], 'controller');
showLog(controller);
const first = await new Promise<string>((resolveLine) => createInterface({ input: controller.stdout! }).once('line', resolveLine));
const { listening } = JSON.parse(first) as { listening: string };
const { client } = await createAdminClient(home, listening);

if (!existsSync(resolve(agentDir, 'identity.json'))) {
  const { joinString } = await client.createToken({ ttlSeconds: 600, uses: 1 });
  const enrol = spawn(process.execPath, [bin('agent/main.js'), 'enrol', joinString, '--state-dir', agentDir], { env, stdio: ['ignore', 'inherit', 'pipe'] });
  let errors = '';
  enrol.stderr!.on('data', (d: Buffer) => (errors += d.toString()));
  const code = await new Promise<number | null>((r) => enrol.once('exit', r));
  if (code !== 0) {
    say(`enrolment failed:\n${errors}`);
    stop(1);
  }
}

const current = (await client.getPolicy({})).policy;
const wanted = [...dirs].sort().join('\n');
if (!current || current.rules.flatMap((r) => r.paths).sort().join('\n') !== wanted) {
  const res = await client.applyPolicy({ policy: policyToPb({ version: 0, limits: DEFAULT_LIMITS, rules: [defineRule({ name: 'quickstart', paths: dirs, exclude: ['**/*.swp', '**/*~'], alert: true, selector: {} })] }) });
  say(`policy v${res.version}: watching ${dirs.join(', ')} (every change alerts)`);
}

const agent = run([bin('agent/main.js'), 'run', '--state-dir', agentDir], 'agent');
showAgentProblems(agent);
agent.stdout!.resume();

say(`
Vigil is running: controller on ${listening}, one agent, embedded Postgres in ${home.dataDir}.
Watching: ${dirs.join(', ')}
Try, in another terminal:
  echo hello > ${dirs[0]}/hello.txt
  chmod 600 ${dirs[0]}/hello.txt
  VIGIL_HOME=${homeDir} npx vigilctl events
Alerts print here as ALERT lines; with SLACK_TOKEN and SLACK_CHANNEL set they go to Slack.
Ctrl-C stops everything.
`);
