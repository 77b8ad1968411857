/**
 * Reconciliation's messages as plain domain types (docs/delivery.md, "Reconciliation"): the agent's
 * range digests, the controller's verdicts, the leaves compared entry by entry and the repairs.
 * proto/sync-messages.ts maps them to and from the wire.
 */
import type { PositionRange } from './sync-digest.js';

/** The agent's digest of one range. */
export interface RangeCompare {
  readonly range: PositionRange;
  readonly count: number;
  readonly xor: bigint;
}

export interface Verdict {
  readonly same: boolean;
  readonly controllerCount: number;
}

export interface LeafEntry {
  readonly path: Buffer;
  readonly digest: bigint;
}

/** Every baseline entry of a range, for a comparison entry by entry. */
export interface Leaf {
  readonly range: PositionRange;
  readonly entries: readonly LeafEntry[];
}

export interface Repairs {
  /** In the agent's baseline, not in the controller's state. */
  readonly missing: readonly Buffer[];
  /** In both, with another entry digest. */
  readonly differing: readonly Buffer[];
  /** In the controller's state, not in the agent's baseline. */
  readonly extra: readonly Buffer[];
}

/** Most ranges in one SyncRanges, and most entries in one SyncEntries (both sides enforce them). */
export const MAX_SYNC_RANGES = 4096;
export const MAX_SYNC_ENTRIES = 20_000;
