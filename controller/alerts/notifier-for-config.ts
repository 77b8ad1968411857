import type { Logger } from 'pino';
import type { ControllerConfig } from '../config.js';
import { createLogNotifier } from './log-notifier.js';
import type { Notifier } from './notifier.js';
import { createSlackNotifier } from './slack-notifier.js';

/** Slack when it is configured; otherwise `withoutSlack` when given (the quickstart's console), else the controller's log. */
export function notifierForConfig(slack: ControllerConfig['slack'], logger: Logger, withoutSlack?: Notifier): Notifier {
  if (slack) return createSlackNotifier({ ...slack, logger: logger.child({ component: 'slack' }) });
  return withoutSlack ?? createLogNotifier(logger.child({ component: 'alerts' }));
}
