#!/usr/bin/env node
import { Command } from 'commander';
import { configFileEnv, readControllerConfigFile } from './config-file.js';
import { compileControllerConfig } from './config.js';
import { startController } from './controller.js';
import { resolveHomeDir } from './home.js';
import { createLogger } from './log.js';
import { systemClock } from './store/index.js';
import { VIGIL_VERSION } from '../core/version.js';

const program = new Command('vigil-controller')
  .description('Vigil controller: enrolment, agent streams, admin API and alerts')
  .version(VIGIL_VERSION)
  .option('--config <file>', 'YAML config file (docs/deploy.md, "Config files"); flags and environment variables override it')
  .option('--listen <host:port>', 'mutual-TLS listener for agents and vigilctl (default: 0.0.0.0:8443)')
  .option('--enrol-listen <host:port>', 'enrolment listener, server TLS only (default: 0.0.0.0:8444)')
  .option('--metrics-listen <host:port>', 'plain-HTTP /metrics, /healthz and /readyz (default: off; or VIGIL_METRICS_LISTEN)')
  .addHelpText(
    'after',
    `
Environment:
  VIGIL_HOME        controller home made by \`vigilctl init\` (default ~/.vigil)
  DATABASE_URL      Postgres server; unset: embedded PGlite under VIGIL_HOME/db
  SLACK_TOKEN, SLACK_CHANNEL, SLACK_API_URL   Slack alerts; unset: alerts go to the log
  VIGIL_AGENT_CERT_TTL   lifetime of agent certificates (default 24h)
  VIGIL_METRICS_LISTEN   as --metrics-listen
  VIGIL_LOG_LEVEL   pino level (default info)`,
  )
  .action(async (opts: { config?: string; listen?: string; enrolListen?: string; metricsListen?: string }) => {
    const logger = createLogger({ name: 'vigil-controller' });
    try {
      const file = opts.config ? readControllerConfigFile(opts.config) : null;
      // The environment goes over the file; flags go over both.
      const env: NodeJS.ProcessEnv = file ? configFileEnv(file) : {};
      for (const [k, v] of Object.entries(process.env)) if (v !== undefined && v !== '') env[k] = v;
      const config = compileControllerConfig({
        home: resolveHomeDir(env),
        listen: opts.listen ?? file?.listen,
        enrolListen: opts.enrolListen ?? file?.enrol_listen,
        metricsListen: opts.metricsListen,
        env,
      });
      const controller = await startController(config, { logger, clock: systemClock });
      // stdout: one line a script can read to learn the bound addresses (ports may be 0 in flags).
      process.stdout.write(`${JSON.stringify({ listening: controller.address, enrol: controller.enrolAddress, ...(controller.metricsAddress ? { metrics: controller.metricsAddress } : {}) })}\n`);
      const shutdown = (signal: string) => {
        logger.info({ signal }, 'shutting down');
        controller.stop().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once('SIGINT', () => shutdown('SIGINT'));
      process.once('SIGTERM', () => shutdown('SIGTERM'));
    } catch (err) {
      // One line, as every Vigil program does on failure.
      process.stderr.write(`vigil-controller: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    }
  });

await program.parseAsync(process.argv);
