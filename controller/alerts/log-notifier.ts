import type { Logger } from 'pino';
import { formatAlertText, type Notifier } from './notifier.js';

/** Without a Slack token, alerts go to the controller's log at warn level. */
export function createLogNotifier(logger: Logger): Notifier {
  return {
    name: 'log',
    async notify(alert) {
      logger.warn(
        { alert: { id: alert.id, agentId: alert.agentId, rule: alert.rule, seq: alert.seq, kind: alert.kind, path: alert.path } },
        formatAlertText(alert),
      );
    },
    async security(event) {
      logger.warn({ security: { kind: event.kind, agentId: event.agentId } }, event.text);
    },
  };
}
