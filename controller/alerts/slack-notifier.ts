import { LogLevel, WebClient } from '@slack/web-api';
import type { Logger } from 'pino';
import { formatAlertText, type Notifier } from './notifier.js';

export interface SlackNotifierOptions {
  readonly token: string;
  readonly channel: string;
  /** API base, e.g. http://127.0.0.1:PORT/api/ for a local stand-in. Default: Slack's. */
  readonly apiUrl?: string;
  readonly logger: Logger;
}

/** Posts alerts with the official client, which handles Slack's rate limits and retries. */
export function createSlackNotifier(opts: SlackNotifierOptions): Notifier {
  const client = new WebClient(opts.token, {
    ...(opts.apiUrl ? { slackApiUrl: opts.apiUrl.endsWith('/') ? opts.apiUrl : `${opts.apiUrl}/` } : {}),
    logLevel: LogLevel.ERROR,
    retryConfig: { retries: 5, factor: 2, minTimeout: 200, maxTimeout: 10_000 },
  });
  return {
    name: 'slack',
    async notify(alert) {
      await client.chat.postMessage({ channel: opts.channel, text: formatAlertText(alert), unfurl_links: false });
      opts.logger.info({ alertId: alert.id, agentId: alert.agentId, seq: alert.seq }, 'alert posted to Slack');
    },
    async security(event) {
      await client.chat.postMessage({ channel: opts.channel, text: `:warning: Vigil security: ${event.text}`, unfurl_links: false });
    },
  };
}
