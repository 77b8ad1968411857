#!/usr/bin/env node
import { Command } from 'commander';
import { startAgent } from './agent.js';
import { enrol } from './enrol.js';
import { createAgentLogger } from './log.js';
import { silenceIpServernameWarning } from './quiet-warnings.js';
import { defaultStateDir } from './state-dir.js';

silenceIpServernameWarning();

const program = new Command('vigil-agent').description('Vigil agent: baseline and watch files, stream every change to the controller');

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
    const logger = createAgentLogger();
    try {
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
  .option('--state-dir <dir>', 'the directory given to enrol', defaultStateDir())
  .action(async (o: { stateDir: string }) => {
    const logger = createAgentLogger();
    try {
      const agent = await startAgent({ stateDir: o.stateDir, logger });
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
      logger.error({ err }, 'agent stopped');
      fail(err);
      process.exit(1);
    }
  });

await program.parseAsync(process.argv);
