#!/usr/bin/env node
import { Command } from 'commander';
import { silenceIpServernameWarning } from './quiet-warnings.js';
import { AgentError } from './errors.js';
import { defaultStateDir } from './state-dir.js';
import { VIGIL_VERSION } from '../core/version.js';

silenceIpServernameWarning();

const program = new Command('vigil-agent').description('Vigil agent: baseline and watch files, stream every change to the controller').version(VIGIL_VERSION);

function fail(err: unknown): void {
  process.stderr.write(`vigil-agent: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}

program
  .command('enrol')
  .alias('enroll')
  .description('enrol this host with a join string from `vigilctl tokens create`')
  .argument('<join-string>', 'vigil://HOST:PORT?token=...&pin=sha256:...')
  .option('--state-dir <dir>', 'where the agent keeps its key, certificate and queue', defaultStateDir())
  .action(async (joinString: string, o: { stateDir: string }) => {
    // Loaded on demand, as every command's own modules: `scan` needs no logger.
    const { createAgentLogger } = await import('./log.js');
    // One line of output: progress only when asked for (VIGIL_LOG_LEVEL=info).
    const logger = createAgentLogger(process.env.VIGIL_LOG_LEVEL ?? 'warn');
    try {
      const { enrol } = await import('./enrol.js');
      const id = await enrol({ joinString, stateDir: o.stateDir, logger });
      process.stdout.write(`enrolled as agent ${id.agentId}; run: vigil-agent run --state-dir ${o.stateDir}\n`);
    } catch (err) {
      fail(err);
    }
    logger.flush();
  });

program
  .command('run')
  .description('run the agent: watch the policy paths and stream changes to the controller')
  .option('--config <file>', 'YAML config file (docs/deploy.md, "Config files"); flags and environment variables override it')
  .option('--state-dir <dir>', `the directory given to enrol (default: ${defaultStateDir()})`)
  .option('--metrics-listen <host:port>', 'plain-HTTP /metrics, /healthz and /readyz (default: off; or VIGIL_METRICS_LISTEN)')
  .action(async (o: { config?: string; stateDir?: string; metricsListen?: string }) => {
    const { createAgentLogger } = await import('./log.js');
    const logger = createAgentLogger();
    try {
      const { startAgent } = await import('./agent.js');
      const { readAgentConfigFile } = await import('./config-file.js');
      const file = o.config ? readAgentConfigFile(o.config) : null;
      const listen = o.metricsListen ?? (process.env.VIGIL_METRICS_LISTEN || file?.metricsListen);
      const agent = await startAgent({ stateDir: o.stateDir ?? file?.stateDir ?? defaultStateDir(), logger, ...(file ? { options: file.options } : {}), ...(listen ? { metricsListen: parseListen(listen) } : {}) });
      if (agent.metricsAddress) logger.info({ metricsAddress: agent.metricsAddress }, 'serving /metrics, /healthz and /readyz');
      const shutdown = (signal: string) => {
        logger.info({ signal }, 'stopping');
        agent.stop().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once('SIGINT', () => shutdown('SIGINT'));
      process.once('SIGTERM', () => shutdown('SIGTERM'));
      await agent.done;
    } catch (err) {
      // An expected refusal (not enrolled, certificate expired, revoked) is one line; anything
      // else is logged in full first, for a bug report.
      if (!(err instanceof AgentError)) logger.error({ err }, 'agent stopped');
      fail(err);
      process.exit(1);
    }
  });

program
  .command('scan')
  .description('scan paths locally, without a controller: hashes every file; with --state-dir, reports what changed since the last scan')
  .argument('[paths...]', 'files or directories to scan')
  .option('--policy <file>', 'policy YAML whose rules (paths, excludes) to scan')
  .option('--state-dir <dir>', 'compare against the baseline kept in DIR and update it')
  .option('--full-hash', 'read every file again even when its stat data is unchanged')
  .option('--json', 'print the states as a JSON array')
  .option('--threads <n>', 'scan threads, which walk, compare and hash (default: one per core)')
  .action(async (paths: string[], o: { policy?: string; stateDir?: string; fullHash?: boolean; json?: boolean; threads?: string }) => {
    try {
      // Loaded on demand: a local scan needs neither gRPC nor the controller client.
      const { runScanCommand } = await import('./scan-command.js');
      await runScanCommand({
        paths,
        ...(o.policy ? { policyFile: o.policy } : {}),
        ...(o.stateDir ? { stateDir: o.stateDir } : {}),
        fullHash: Boolean(o.fullHash),
        json: Boolean(o.json),
        ...(o.threads ? { threads: Number(o.threads) } : {}),
        out: process.stdout,
        err: process.stderr,
      });
    } catch (err) {
      fail(err);
    }
  });

await program.parseAsync(process.argv);

/** HOST:PORT (IPv6 as [::1]:PORT) for --metrics-listen. */
function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new AgentError('invalid_argument', `--metrics-listen: expected HOST:PORT, got "${text}"`);
  return { host: (m[1] ?? m[2])!, port };
}
