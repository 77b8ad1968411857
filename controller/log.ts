import { pino, type Logger } from 'pino';

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

/** JSON logs on stderr (stdout stays for program output); level from VIGIL_LOG_LEVEL. */
export function createLogger(opts: { name: string; level?: string }): Logger {
  return pino(
    {
      name: opts.name,
      level: opts.level ?? process.env.VIGIL_LOG_LEVEL ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { pid: process.pid },
    },
    pino.destination({ fd: 2, sync: false }),
  );
}
