import type { Logger } from 'pino';
import type { Clock, PresenceStore, PresenceUpdate } from '../store/index.js';

/** How often presence is written and the replica's heartbeat renewed. */
export const PRESENCE_FLUSH_MS = 1000;
/** A replica whose heartbeat is older than this holds no streams (it stopped or died). */
export const PRESENCE_STALE_MS = 15_000;

/**
 * Where agents are connected, fleet-wide, written in batches: streams opening and closing here,
 * hello messages and scan reports become one statement per flush (with the replica's heartbeat),
 * not a query each, so a reconnect storm costs the database a statement a second.
 */
export interface Presence {
  connected(agentId: string, streamId: string): void;
  /** Heard from the agent (hello, scan report): what it said about itself, if anything. */
  seen(agentId: string, fields?: { hostname?: string; policyVersion?: number }): void;
  disconnected(agentId: string, streamId: string): void;
  /** Writes what is pending now. */
  flush(): Promise<void>;
  /** Writes what is pending, then says this replica holds no streams any more. */
  stop(): Promise<void>;
}

/** Whether a stored connection is live: its replica's heartbeat is fresh. */
export function isLive(connection: { readonly heartbeatAt: Date } | null, now: Date): boolean {
  return connection !== null && now.getTime() - connection.heartbeatAt.getTime() < PRESENCE_STALE_MS;
}

export function createPresence(deps: { store: PresenceStore; replica: { id: string; name: string }; clock: Clock; logger: Logger; flushMs?: number }): Presence {
  const { store, clock, logger } = deps;
  const replica = { ...deps.replica, startedAt: clock() };
  let pending = new Map<string, { at: Date; hostname: string | null; policyVersion: number | null; stream: PresenceUpdate['stream'] }>();
  let running: Promise<void> = Promise.resolve();
  const note = (agentId: string, change: { hostname?: string; policyVersion?: number; stream?: PresenceUpdate['stream'] }) => {
    const prev = pending.get(agentId);
    pending.set(agentId, {
      at: clock(),
      hostname: change.hostname ?? prev?.hostname ?? null,
      policyVersion: change.policyVersion ?? prev?.policyVersion ?? null,
      stream: change.stream ?? prev?.stream ?? null,
    });
  };
  const flush = () => {
    // One flush at a time, in order: a disconnect is never written before its connect.
    running = running.then(async () => {
      const batch = pending;
      pending = new Map();
      try {
        await store.heartbeat(replica, clock());
        await store.record(replica.id, [...batch].map(([agentId, u]) => ({ agentId, ...u })));
      } catch (err) {
        // Kept for the next flush; newer news of an agent wins over what failed to be written.
        for (const [id, u] of batch) if (!pending.has(id)) pending.set(id, u);
        logger.warn({ err, agents: batch.size }, 'presence write failed; retrying with the next flush');
      }
    });
    return running;
  };
  const timer = setInterval(() => void flush(), deps.flushMs ?? PRESENCE_FLUSH_MS);
  timer.unref();
  void flush();
  return {
    connected: (agentId, id) => note(agentId, { stream: { id, event: 'connect' } }),
    seen: (agentId, fields = {}) => note(agentId, fields),
    disconnected: (agentId, id) => note(agentId, { stream: { id, event: 'disconnect' } }),
    flush,
    async stop() {
      clearInterval(timer);
      await flush();
      await store.retire(replica.id).catch((err: unknown) => logger.warn({ err }, 'could not retire this replica\'s presence'));
    },
  };
}
