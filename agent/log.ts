import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON logs on stderr; secrets (keys, tokens, join strings) are redacted wherever they appear. */
export function createAgentLogger(level = process.env.VIGIL_LOG_LEVEL ?? 'info'): Logger {
  return pino(
    {
      name: 'vigil-agent',
      level,
      redact: {
        paths: ['token', '*.token', 'secret', '*.secret', 'joinString', '*.joinString', 'privateKeyPem', '*.privateKeyPem', 'key', '*.key'],
        censor: '[redacted]',
      },
      base: { pid: process.pid },
    },
    pino.destination({ fd: 2, sync: true }),
  );
}
