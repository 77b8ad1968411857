import type { Logger } from 'pino';
import type { ControllerConfig } from '../config.js';
import { createLogNotifier } from './log-notifier.js';
import type { Notifier } from './notifier.js';
import { createSlackNotifier } from './slack-notifier.js';

/** Slack when it is configured, the controller's log otherwise. */
export function notifierForConfig(slack: ControllerConfig['slack'], logger: Logger): Notifier {
  return slack ? createSlackNotifier({ ...slack, logger: logger.child({ component: 'slack' }) }) : createLogNotifier(logger.child({ component: 'alerts' }));
}
