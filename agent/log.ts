import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

/**
 * Logs on stderr: human-readable on a terminal (pino-pretty), JSON lines otherwise (journald, a
 * file, a log shipper). Secrets (keys, tokens, join strings) are redacted wherever they appear.
 */
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
    process.stderr.isTTY ? pretty({ destination: 2, sync: true, ignore: 'pid,hostname' }) : pino.destination({ fd: 2, sync: true }),
  );
}
