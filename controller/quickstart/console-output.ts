import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { displayPath } from '../../core/model.js';
import type { RecordedChanges } from '../recorded-changes.js';
import { formatAlertText, type Notifier } from '../alerts/notifier.js';
import { REDACT_PATHS } from '../log.js';

/** What the quickstart prints: one line per committed change, alert, error and agent problem. */
export interface ConsoleOutput {
  /** For startController: one line per change the controller committed. */
  showChanges(recorded: RecordedChanges): void;
  /** For startController: alerts printed as ALERT lines when Slack is not configured. */
  readonly alerts: Notifier;
  /** The controller's logger: errors printed, the rest dropped. */
  readonly controllerLogger: Logger;
  /** The agent's warnings and errors, one line each: its problems are never hidden (changes show through the controller). */
  showAgentProblems(agentStderr: Readable): void;
}

const clockTime = (at: Date) => at.toISOString().slice(11, 23);

export function createConsoleOutput(say: (line: string) => void): ConsoleOutput {
  return {
    showChanges({ changes }) {
      const time = clockTime(new Date());
      for (const d of changes) {
        const sha = d.state?.sha256 ? ` sha256:${d.state.sha256.toString('hex').slice(0, 16)}` : '';
        say(`${time}  ${d.kind.padEnd(10)} ${displayPath(d.path)}${sha}  (seq ${d.seq}, ${d.source})`);
      }
    },
    alerts: {
      name: 'console',
      async notify(alert) {
        say(`${clockTime(new Date())}  ALERT      ${formatAlertText(alert)}`);
      },
      async security(event) {
        say(`${clockTime(new Date())}  SECURITY   ${event.text}`);
      },
    },
    controllerLogger: pino(
      { name: 'vigil-controller', level: process.env.VIGIL_LOG_LEVEL ?? 'info', redact: { paths: REDACT_PATHS, censor: '[redacted]' } },
      {
        write(line: string) {
          const entry = JSON.parse(line) as { time: number; level: number; msg: string; err?: { message?: string } };
          if (entry.level >= 50) say(`${clockTime(new Date(entry.time))}  ERROR      ${entry.msg}${entry.err ? `: ${entry.err.message}` : ''}`);
        },
      },
    ),
    showAgentProblems(agentStderr) {
      createInterface({ input: agentStderr }).on('line', (line) => {
        let entry: Record<string, unknown>;
        try {
          entry = JSON.parse(line) as Record<string, unknown>;
        } catch {
          return void say(`agent: ${line}`);
        }
        const level = entry.level as number;
        if (level < 40) return;
        const time = clockTime(new Date(entry.time as number));
        const err = entry.err as { message?: string } | undefined;
        const detail = err?.message ?? (entry.reason as string | undefined);
        say(`${time}  AGENT ${level >= 50 ? 'ERROR' : 'WARN '} ${entry.msg as string}${detail ? `: ${detail}` : ''}`);
      });
    },
  };
}
