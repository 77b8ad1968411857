import { createGroupCommit } from '../group-commit.js';
import type { CommandReport, CommandStore } from '../store/index.js';

/**
 * Agents' reports on their commands, recorded in batches: when a fleet operation's 10,000 agents
 * report within seconds, one statement records what arrived while the previous one ran (a group
 * commit), instead of a round trip per agent. A report alone is recorded at once. Each report's
 * promise settles with its own batch: true when it completed an open command of that agent.
 */
export interface CommandReports {
  record(report: CommandReport): Promise<boolean>;
  /** Resolves when nothing is queued or being written. */
  idle(): Promise<void>;
}

export function createCommandReports(store: Pick<CommandStore, 'completeMany'>, opts: { maxBatch?: number } = {}): CommandReports {
  const commit = createGroupCommit(
    async (reports: readonly CommandReport[]) => {
      const done = await store.completeMany(reports);
      return reports.map((r) => done.has(r.id));
    },
    // One report per command id in a statement: a repeat goes in the next (and finds it done).
    { maxBatch: opts.maxBatch ?? 1000, keyOf: (r) => r.id },
  );
  return { record: (report) => commit.submit(report), idle: () => commit.idle() };
}
