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

interface Waiting {
  readonly report: CommandReport;
  resolve(completed: boolean): void;
  reject(err: unknown): void;
}

export function createCommandReports(store: Pick<CommandStore, 'completeMany'>, opts: { maxBatch?: number } = {}): CommandReports {
  const maxBatch = opts.maxBatch ?? 1000;
  let queue: Waiting[] = [];
  let writing: Promise<void> | null = null;

  const write = async (batch: Waiting[]) => {
    // One report per command id in a statement; a repeat waits for the next (and finds it done).
    const seen = new Set<string>();
    const now: Waiting[] = [];
    for (const w of batch) {
      if (seen.has(w.report.id)) queue.push(w);
      else {
        seen.add(w.report.id);
        now.push(w);
      }
    }
    try {
      const done = await store.completeMany(now.map((w) => w.report));
      for (const w of now) w.resolve(done.has(w.report.id));
    } catch (err) {
      for (const w of now) w.reject(err);
    }
  };

  const pump = () => {
    if (writing || !queue.length) return;
    const batch = queue.slice(0, maxBatch);
    queue = queue.slice(batch.length);
    writing = write(batch).finally(() => {
      writing = null;
      pump();
    });
  };

  return {
    record(report) {
      return new Promise<boolean>((resolve, reject) => {
        queue.push({ report, resolve, reject });
        // Reports that arrive in the same turn of the event loop go together.
        if (queue.length === 1) setImmediate(pump);
      });
    },
    async idle() {
      while (writing || queue.length) await (writing ?? new Promise((r) => setImmediate(r)));
    },
  };
}
