import { sameRange } from '../../core/sync-digest.js';
import type { Leaf, RangeCompare, Repairs, Verdict } from '../../core/sync-types.js';
import type { SyncStore } from '../store/index.js';

/**
 * The controller's half of reconciliation (docs/delivery.md): compares the agent's range digests
 * and leaf entries with its own current state of that agent (file_state). It changes nothing; the
 * agent queues the repairs as ordinary deltas, which the ingest stores as events with source
 * `reconcile`.
 */
export interface ReconcileResponder {
  compareRanges(agentId: string, ranges: readonly RangeCompare[]): Promise<Verdict[]>;
  compareEntries(agentId: string, leaves: readonly Leaf[]): Promise<Repairs>;
}

export function createReconcileResponder(sync: SyncStore): ReconcileResponder {
  return {
    async compareRanges(agentId, ranges) {
      const own = await sync.rangeDigests(agentId, ranges.map((r) => r.range));
      return ranges.map((r, i) => ({ same: sameRange(r, own[i]!), controllerCount: own[i]!.count }));
    },
    async compareEntries(agentId, leaves) {
      const own = await sync.entriesIn(agentId, leaves.map((l) => l.range));
      const missing: Buffer[] = [];
      const differing: Buffer[] = [];
      const extra: Buffer[] = [];
      leaves.forEach((leaf, i) => {
        const mine = new Map(own[i]!.map((e) => [e.path.toString('latin1'), e]));
        for (const e of leaf.entries) {
          const key = e.path.toString('latin1');
          const held = mine.get(key);
          if (!held) missing.push(e.path);
          else if (held.digest !== e.digest) differing.push(e.path);
          mine.delete(key);
        }
        for (const e of mine.values()) extra.push(e.path);
      });
      return { missing, differing, extra };
    },
  };
}
