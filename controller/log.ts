import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

/** Keys that may carry secrets; pino replaces their values wherever they appear. */
export const REDACT_PATHS = [
  'token',
  '*.token',
  'secret',
  '*.secret',
  'password',
  '*.password',
  'databaseUrl',
  '*.databaseUrl',
  'slackToken',
  '*.slackToken',
  'key',
  '*.key',
  'privateKeyPem',
  '*.privateKeyPem',
  'joinString',
  '*.joinString',
];

/**
 * Logs on stderr (stdout stays for program output): human-readable on a terminal (pino-pretty),
 * JSON lines otherwise; level from VIGIL_LOG_LEVEL.
 */
export function createLogger(opts: { name: string; level?: string }): Logger {
  return pino(
    {
      name: opts.name,
      level: opts.level ?? process.env.VIGIL_LOG_LEVEL ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { pid: process.pid },
    },
    process.stderr.isTTY ? pretty({ destination: 2, sync: true, ignore: 'pid,hostname' }) : pino.destination({ fd: 2, sync: false }),
  );
}
