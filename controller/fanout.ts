import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Sql } from './store/index.js';

/** What controller replicas tell each other (Postgres LISTEN/NOTIFY, so no extra moving part). */
export type FanoutEvent =
  | { readonly type: 'revoked'; readonly agentId: string; readonly reason: string }
  | { readonly type: 'policy'; readonly version: number }
  /**
   * A group of commands was queued (fleet/command-dispatch.ts): each replica claims the pending
   * ones of the agents connected to it. The ids stay in the table: a NOTIFY carries 8000 bytes.
   */
  | { readonly type: 'commands'; readonly groupId: string; readonly expiresAtMs: number }
  | { readonly type: 'streams'; readonly streams: readonly AnnouncedStream[] };

/** A stream opened on some replica (fleet/duplicate-streams.ts). */
export interface AnnouncedStream {
  readonly agentId: string;
  readonly streamId: string;
  readonly remote: string;
}

export interface Fanout {
  /** This replica's id; events carry the id of the replica that published them. */
  readonly replicaId: string;
  publish(event: FanoutEvent): Promise<void>;
  /** Called for every event, including this replica's own (origin tells which). */
  subscribe(fn: (event: FanoutEvent, origin: string) => void): void;
  /** Called when events may have been missed (the listening connection was re-established). */
  onResync(fn: () => void): void;
  close(): Promise<void>;
}

const CHANNEL = 'vigil_fanout';

export async function createFanout(sql: Sql, logger: Logger): Promise<Fanout> {
  const replicaId = randomUUID();
  const subscribers: ((event: FanoutEvent, origin: string) => void)[] = [];
  const resyncers: (() => void)[] = [];
  const stop = await sql.listen(
    CHANNEL,
    (payload) => {
    let msg: { origin: string; event: FanoutEvent };
    try {
      msg = JSON.parse(payload) as { origin: string; event: FanoutEvent };
    } catch {
      logger.warn('malformed fan-out message ignored');
      return;
    }
    for (const fn of subscribers) {
      try {
        fn(msg.event, msg.origin);
      } catch (err) {
        logger.error({ err, type: msg.event.type }, 'fan-out handler failed');
      }
    }
    },
    () => {
      logger.warn('fan-out connection re-established; catching up');
      for (const fn of resyncers) fn();
    },
  );
  return {
    replicaId,
    async publish(event) {
      await sql.query('select pg_notify($1, $2)', [CHANNEL, JSON.stringify({ origin: replicaId, event })]);
    },
    subscribe(fn) {
      subscribers.push(fn);
    },
    onResync(fn) {
      resyncers.push(fn);
    },
    close: stop,
  };
}
