import type { Logger } from 'pino';
import { agentRevokedError, ControllerError } from '../errors.js';
import type { Fanout } from '../fanout.js';
import type { AgentStore, Clock } from '../store/index.js';
import type { AgentHub } from './agent-hub.js';

/** Longest revocation reason kept. */
const MAX_REASON = 500;
export const DEFAULT_REVOKE_REASON = 'revoked by an operator';

/**
 * Agent revocation across the fleet: recorded in the database, the agent's live stream cut on this
 * replica at once and on every other one through the fan-out, and a periodic sweep as the safety
 * net behind the fan-out (a replica whose listening connection was down missed the event).
 */
export interface Revocations {
  /**
   * Revokes the agent and all its certificates, cuts its stream everywhere; returns the reason
   * recorded. not_found for an unknown agent, failed_precondition for one revoked already.
   */
  revoke(agentId: string, reason: string): Promise<{ reason: string }>;
  /** Cuts the streams of revoked agents connected here; returns how many. */
  sweep(): Promise<number>;
  /**
   * Whether a revocation of this agent reached this replica in the last ten minutes. A stream
   * checked against the database before it was attached asks this after: a revocation that
   * committed in between was either heard before the attach (and is answered here) or after (and
   * cuts the attached stream), so no query is needed twice per stream.
   */
  revokedRecently(agentId: string): boolean;
}

/** How long a heard revocation is remembered for revokedRecently. */
const RECENT_MS = 10 * 60_000;

export function createRevocations(deps: { agents: AgentStore; hub: AgentHub; fanout: Fanout; logger: Logger; clock: Clock }): Revocations {
  const { agents, hub, fanout, logger, clock } = deps;
  const recent = new Map<string, number>();
  const heard = (agentId: string) => {
    const now = clock().getTime();
    recent.delete(agentId);
    recent.set(agentId, now);
    // Oldest first (insertion order): drop what is past remembering.
    for (const [id, at] of recent) {
      if (now - at < RECENT_MS) break;
      recent.delete(id);
    }
  };
  const cut = (agentId: string, reason?: string) => hub.get(agentId)?.close(agentRevokedError(agentId, reason));

  fanout.subscribe((event, origin) => {
    if (event.type !== 'revoked') return;
    heard(event.agentId);
    // This replica's own revocations were cut when they were made.
    if (origin !== fanout.replicaId) cut(event.agentId, event.reason);
  });
  const sweep = async () => {
    const revoked = await agents.revokedAmong(hub.ids());
    for (const id of revoked) cut(id);
    return revoked.length;
  };
  fanout.onResync(() => void sweep().catch((err: unknown) => logger.error({ err }, 'revocation sweep failed')));

  return {
    async revoke(agentId, asked) {
      const reason = asked.slice(0, MAX_REASON) || DEFAULT_REVOKE_REASON;
      if (!(await agents.revoke(agentId, reason))) {
        throw (await agents.get(agentId))
          ? new ControllerError('failed_precondition', `agent ${agentId} is revoked already`)
          : new ControllerError('not_found', `no agent ${agentId}`);
      }
      heard(agentId);
      cut(agentId, reason);
      await fanout.publish({ type: 'revoked', agentId, reason });
      return { reason };
    },
    sweep,
    revokedRecently: (agentId) => recent.has(agentId),
  };
}
