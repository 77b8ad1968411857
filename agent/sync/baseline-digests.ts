import { addEntry, emptyRange, entryDigest, pathPosition, type RangeDigest } from '../../proto/sync-digest.js';
import type { FileState } from '../../proto/model.js';
import type { LocalStore } from '../local-store.js';

/** A position range, both ends included (proto/sync-digest.ts). */
export type PositionRange = readonly [start: bigint, end: bigint];

/**
 * The baseline's entries with their position, in the baseline's order. The entry digest (a hash of
 * the whole state) is left to the caller, for the entries a range wants.
 */
function* positioned(store: Pick<LocalStore, 'baselineUnder'>): Generator<{ path: Buffer; state: FileState; position: bigint }> {
  for (const { path, state } of store.baselineUnder(Buffer.from('/'))) yield { path, state, position: pathPosition(path) };
}

/**
 * The agent's side of reconciliation (docs/delivery.md): per range, the count and XOR of the
 * entry digests of the baseline's paths whose position falls in it. One pass over the baseline,
 * whatever the number of ranges; ranges must be sorted and must not overlap.
 */
export function baselineRangeDigests(store: Pick<LocalStore, 'baselineUnder'>, ranges: readonly PositionRange[]): RangeDigest[] {
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i]![0] <= ranges[i - 1]![1]) throw new RangeError('ranges must be sorted and must not overlap');
  }
  const out = ranges.map(() => emptyRange());
  if (!ranges.length) return out;
  for (const e of positioned(store)) {
    // The last range starting at or before the position (bisection); counted when it reaches it.
    let lo = 0;
    let hi = ranges.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (ranges[mid]![0] <= e.position) lo = mid;
      else hi = mid - 1;
    }
    const [start, end] = ranges[lo]!;
    if (e.position >= start && e.position <= end) addEntry(out[lo]!, entryDigest(e.path, e.state));
  }
  return out;
}

/** The baseline's paths in one range, with their entry digests. */
export function baselineEntriesIn(store: Pick<LocalStore, 'baselineUnder'>, [start, end]: PositionRange): { path: Buffer; digest: bigint }[] {
  const out: { path: Buffer; digest: bigint }[] = [];
  for (const e of positioned(store)) if (e.position >= start && e.position <= end) out.push({ path: e.path, digest: entryDigest(e.path, e.state) });
  return out;
}
