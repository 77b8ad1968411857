import { createGroupCommit } from '../../group-commit.js';
import type { AgentStore } from '../../store/index.js';

/**
 * The lookup every new agent stream is judged by (authorise.ts), in batches: when a restarted
 * controller's fleet reconnects at hundreds of streams a second, the lookups that arrive while one
 * query runs go in the next (one query for many streams); a stream alone is looked up at once.
 */
export function createStreamLookups(agents: Pick<AgentStore, 'forStreams'>, opts: { maxBatch?: number } = {}): Pick<AgentStore, 'forStream'> {
  const commit = createGroupCommit((pairs: readonly { id: string; serial: string }[]) => agents.forStreams(pairs), { maxBatch: opts.maxBatch ?? 500 });
  return { forStream: (id, serial) => commit.submit({ id, serial }) };
}
