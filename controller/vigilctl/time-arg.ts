import { parseDuration } from '../config.js';
import { ControllerError } from '../errors.js';

/** A point in time from --since/--until: a duration back from now (30s, 15m, 1h, 7d) or an ISO-8601 time. */
export function parseWhen(value: string, flag: string, now = Date.now()): Date {
  if (/^\d{4}-\d{2}-\d{2}/.test(value)) {
    const d = new Date(value);
    if (Number.isNaN(d.getTime())) throw new ControllerError('invalid_argument', `${flag}: "${value}" is not a time`);
    return d;
  }
  return new Date(now - parseDuration(value, flag));
}
