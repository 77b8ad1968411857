import type { Logger } from 'pino';
import { agentRevokedError, ControllerError } from '../errors.js';
import type { Fanout } from '../fanout.js';
import type { AgentStore } from '../store/index.js';
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
}

export function createRevocations(deps: { agents: AgentStore; hub: AgentHub; fanout: Fanout; logger: Logger }): Revocations {
  const { agents, hub, fanout, logger } = deps;
  const cut = (agentId: string, reason?: string) => hub.get(agentId)?.close(agentRevokedError(agentId, reason));

  fanout.subscribe((event, origin) => {
    // This replica's own revocations were cut when they were made.
    if (event.type === 'revoked' && origin !== fanout.replicaId) cut(event.agentId, event.reason);
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
      cut(agentId, reason);
      await fanout.publish({ type: 'revoked', agentId, reason });
      return { reason };
    },
    sweep,
  };
}
