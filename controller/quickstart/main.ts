#!/usr/bin/env node
/**
 * `npm start`: Vigil on one machine, on the embedded default (PGlite). Runs a controller in this
 * process and one local agent as a real process, enrols the agent with a real token, applies a
 * policy that watches the given directories (default .vigil/watched), and prints every change and
 * alert as it is committed. Everything lives under .vigil/ in the repository (VIGIL_HOME=.vigil/home).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { compileControllerConfig } from '../config.js';
import { startController, type RunningController } from '../controller.js';
import { vigilHome } from '../home.js';
import { systemClock } from '../store/index.js';
import { createAdminClient } from '../vigilctl/admin-client.js';
import { createConsoleOutput } from './console-output.js';
import { ensureEnrolled, ensureHome, ensurePolicy } from './setup-steps.js';

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
let controller: RunningController | undefined;
const say = (line: string) => process.stdout.write(`${line}\n`);
const output = createConsoleOutput(say);

function stop(code: number): void {
  for (const c of children) c.kill('SIGTERM');
  void controller?.stop().catch(() => undefined);
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

for (const d of dirs) mkdirSync(d, { recursive: true });
const home = vigilHome(homeDir);
if (await ensureHome(home, opts)) say(`created a CA and operator credential in ${homeDir}`);

controller = await Promise.resolve()
  .then(() => compileControllerConfig({ home: homeDir, listen: opts.listen, enrolListen: opts.enrolListen, env }))
  .then((config) => startController(config, { logger: output.controllerLogger, clock: systemClock, onChangesRecorded: output.showChanges, alertsWithoutSlack: output.alerts }))
  .catch((err: unknown) => {
    say(`controller failed to start: ${err instanceof Error ? err.message : String(err)}; stopping`);
    return process.exit(1);
  });
const listening = controller.address;
const { client } = await createAdminClient(home, listening);

const enrolFailure = await ensureEnrolled(client, bin('agent/main.js'), agentDir, env);
if (enrolFailure !== null) {
  say(`enrolment failed:\n${enrolFailure}`);
  stop(1);
}
const version = await ensurePolicy(client, dirs);
if (version !== null) say(`policy v${version}: watching ${dirs.join(', ')} (every change alerts)`);

const agent = run([bin('agent/main.js'), 'run', '--state-dir', agentDir], 'agent');
output.showAgentProblems(agent.stderr!);
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
