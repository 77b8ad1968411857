import type { RootDatabase } from 'lmdb';
import type { Policy } from '../../core/model.js';
import { readJson, writeJson, type MetaDb } from './lmdb-env.js';

/** A record of a time the watcher may have missed changes (shown by `vigilctl agents show`). */
export interface GapRecord {
  readonly at: Date;
  readonly root: string;
  readonly reason: 'overflow' | 'watch_failed';
  readonly detail: string;
  readonly changesFound: number;
}

/** What the agent keeps about itself beside the baseline and the queue. */
export interface AgentMeta {
  /** The last policy applied (re-applied at start-up); null before the first. */
  policy(): Policy | null;
  setPolicy(p: Policy): void;
  /** Gap records, the most recent ones and the total. */
  gaps(): { readonly recent: readonly GapRecord[]; readonly total: number };
  addGap(g: GapRecord): void;
  lastReconcile(): { readonly at: Date; readonly repairs: number } | null;
  setLastReconcile(r: { at: Date; repairs: number }): void;
}

const POLICY = 'policy';
const GAPS = 'gaps';
const RECONCILE = 'reconcile';
/** Gap records kept (and shown by vigilctl agents show); the total counts every one. */
export const RECENT_GAPS = 20;

/** onPolicy: told of every policy stored (the outbox takes its queue bound from it). */
export function createAgentMeta(env: RootDatabase, meta: MetaDb, onPolicy: (p: Policy) => void): AgentMeta {
  const gaps = () => {
    const g = readJson<{ recent: (Omit<GapRecord, 'at'> & { at: string })[]; total: number }>(meta, GAPS);
    return { recent: (g?.recent ?? []).map((r) => ({ ...r, at: new Date(r.at) })), total: g?.total ?? 0 };
  };
  return {
    // An older encoding reads as none: the controller sends the policy again on connect.
    policy: () => readJson<Policy>(meta, POLICY),
    setPolicy(p) {
      // Plain data (no bigint): JSON keeps the store free of the protobuf runtime.
      writeJson(meta, POLICY, p);
      onPolicy(p);
    },
    gaps,
    addGap(gap) {
      env.transactionSync(() => {
        const g = gaps();
        writeJson(meta, GAPS, { recent: [...g.recent, gap].slice(-RECENT_GAPS), total: g.total + 1 });
      });
    },
    lastReconcile() {
      const r = readJson<{ at: string; repairs: number }>(meta, RECONCILE);
      return r ? { at: new Date(r.at), repairs: r.repairs } : null;
    },
    setLastReconcile(r) {
      writeJson(meta, RECONCILE, { at: r.at.toISOString(), repairs: r.repairs });
    },
  };
}
