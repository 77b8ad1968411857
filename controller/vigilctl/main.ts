#!/usr/bin/env node
import { Command, Option } from 'commander';
import { VIGIL_VERSION } from '../../core/version.js';
import { createCliContext } from './cli-context.js';
import { describeCliError } from './cli-errors.js';
import { registerAdmins } from './commands/admins.js';
import { registerAgents } from './commands/agents.js';
import { registerAudit } from './commands/audit.js';
import { registerCommands } from './commands/commands.js';
import { registerEvents } from './commands/events.js';
import { registerFiles } from './commands/files.js';
import { registerInit } from './commands/init.js';
import { registerPolicies } from './commands/policies.js';
import { registerRescan } from './commands/rescan.js';
import { registerTokens } from './commands/tokens.js';

// `vigilctl events | head`: a reader that went away is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const program = new Command('vigilctl')
  .description('Operate a Vigil fleet through the controller admin API')
  .version(VIGIL_VERSION)
  .option('--json', 'print JSON instead of tables (as -o json)')
  .addOption(new Option('-o, --output <format>', 'json, wide (more columns) or table').choices(['json', 'wide', 'table']))
  .option('--controller <host:port>', 'controller admin address (default: the one recorded by init)')
  .addOption(new Option('--debug', 'show stack traces').hideHelp())
  .configureHelp({ showGlobalOptions: true });

const ctx = createCliContext(program);
for (const register of [registerInit, registerAgents, registerFiles, registerEvents, registerTokens, registerAdmins, registerAudit, registerPolicies, registerRescan, registerCommands]) register(ctx);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  const address = await ctx.controllerAddress().catch(() => null);
  process.stderr.write(`vigilctl: ${describeCliError(err, address)}\n`);
  if (program.opts().debug && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  process.exitCode = 1;
}
