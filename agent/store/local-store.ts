import { join } from 'node:path';
import { DEFAULT_QUEUE_BYTES } from '../../core/policy-defaults.js';
import { createAgentMeta, type AgentMeta } from './agent-meta.js';
import { createBaseline, type Baseline } from './baseline.js';
import { createJournal, type Journal } from './journal.js';
import { openBaselineDb, openEnv, openLongBaselineDb, openMetaDb } from './lmdb-env.js';
import { createOutbox, type Outbox } from './outbox.js';

export type { Change } from './journal.js';
export type { Resync } from './outbox.js';
export type { GapRecord } from './agent-meta.js';
export { RECENT_GAPS } from './agent-meta.js';

/**
 * The agent's durable state, one LMDB environment (survives kill -9): the baseline, the outbox
 * (queue and sequence), what the agent keeps about itself, and the journal that records a change
 * in baseline and outbox together. Each user takes the part it needs.
 */
export interface LocalStore {
  /** The LMDB directory; scan threads open it read-only with openBaselineRanges. */
  readonly location: string;
  /** The LMDB data file, which the store maps into memory (agent/idle-memory.ts releases its pages). */
  readonly dataFile: string;
  readonly baseline: Baseline;
  readonly outbox: Outbox;
  readonly meta: AgentMeta;
  readonly journal: Journal;
  close(): Promise<void>;
}

export function openLocalStore(path: string): LocalStore {
  const env = openEnv(path);
  const baselineDb = openBaselineDb(env);
  const longBaselineDb = openLongBaselineDb(env);
  const metaDb = openMetaDb(env);
  const outbox = createOutbox(env, metaDb);
  const meta = createAgentMeta(env, metaDb, (p) => outbox.setLimitBytes(p.limits.queueBytes ?? DEFAULT_QUEUE_BYTES));
  const stored = meta.policy();
  if (stored) outbox.setLimitBytes(stored.limits?.queueBytes ?? DEFAULT_QUEUE_BYTES);
  return {
    location: path,
    dataFile: join(path, 'data.mdb'),
    baseline: createBaseline(baselineDb, longBaselineDb),
    outbox,
    meta,
    journal: createJournal(env, baselineDb, longBaselineDb, outbox),
    close: () => env.close(),
  };
}
