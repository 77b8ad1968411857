import type { Logger } from 'pino';
import type { Policy, PolicyLimits, PolicyRule } from '../../core/model.js';
import type { AgentHub } from '../fleet/agent-hub.js';
import type { Fanout } from '../fanout.js';
import type { PolicyStore } from '../store/index.js';
import type { CurrentPolicy } from './current-policy.js';

/**
 * How a policy reaches the fleet: a new version is stored, made current, sent to every agent
 * connected here (each gets the part its labels select) and announced to the other replicas,
 * which re-read it and send it to theirs. After a fan-out outage (resync) every replica re-reads
 * and sends again.
 */
export interface PolicyDistribution {
  /** Stores a checked policy as the next version and distributes it; pushedTo counts this replica's agents. */
  apply(policy: { rules: readonly PolicyRule[]; limits: PolicyLimits }, actor: string): Promise<{ policy: Policy; pushedTo: number }>;
  /** Re-reads the current version and sends it to the agents connected here; returns how many. */
  refresh(): Promise<number>;
}

export function createPolicyDistribution(deps: { current: CurrentPolicy; store: PolicyStore; hub: AgentHub; fanout: Fanout; logger: Logger }): PolicyDistribution {
  const { current, store, hub, fanout, logger } = deps;
  const push = () => {
    let n = 0;
    for (const session of hub.all()) {
      const own = current.forLabels(session.labels);
      if (own && session.send({ type: 'policy', policy: own.policy })) n++;
    }
    return n;
  };
  const refresh = async () => {
    await current.refresh();
    return push();
  };
  fanout.subscribe((event, origin) => {
    if (event.type !== 'policy' || origin === fanout.replicaId) return; // applied here: pushed already
    void refresh().catch((err: unknown) => logger.error({ err }, 'policy refresh after a fan-out event failed'));
  });
  fanout.onResync(() => void refresh().catch((err: unknown) => logger.error({ err }, 'policy refresh failed')));
  return {
    async apply(checked, actor) {
      const policy = await store.apply(checked, actor);
      current.set(policy);
      const pushedTo = push();
      await fanout.publish({ type: 'policy', version: policy.version });
      return { policy, pushedTo };
    },
    refresh,
  };
}
