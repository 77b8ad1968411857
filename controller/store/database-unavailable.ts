import pg from 'pg';
import { ControllerError } from '../errors.js';

/** SQLSTATEs that mean the connection, not the statement, failed: class 08, and the server shutting down or starting. */
const CONNECTION_STATES = new Set(['57P01', '57P02', '57P03']);

/**
 * Whether a pg error means the database cannot be reached (restarting, failed over, the connection
 * cut) rather than that a statement was wrong: errors the server did not report (a DatabaseError)
 * are the client's own connection failures.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (!(err instanceof pg.DatabaseError)) return true;
  return err.code !== undefined && (err.code.startsWith('08') || CONNECTION_STATES.has(err.code));
}

/**
 * A database failure as callers should see it: UNAVAILABLE (retry later) when the database cannot
 * be reached, so an agent reconnects and resends instead of being told of an internal error; any
 * other error unchanged.
 */
export function asDatabaseError(err: unknown): unknown {
  return isDatabaseUnavailable(err) ? new ControllerError('unavailable', 'the database is unavailable; try again', { cause: err }) : err;
}
