import { addEntry, emptyRange, entryDigest, pathPosition, type PositionRange, type RangeDigest } from '../../core/sync-digest.js';
import type { Baseline } from '../store/baseline.js';
import { keyToPath } from '../store/path-key.js';
import { decodeState } from '../store/state-codec.js';

type BaselineReader = Pick<Baseline, 'encodedUnder'>;

/** Throws unless the ranges are sorted and do not overlap. */
function checkSorted(ranges: readonly PositionRange[]): void {
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i]![0] <= ranges[i - 1]![1]) throw new RangeError('ranges must be sorted and must not overlap');
  }
}

/**
 * Calls visit(index of the range, path, entry digest) for every baseline entry whose position falls
 * in one of the sorted ranges: one pass over the baseline, whatever the number of ranges. States
 * are decoded and digested only for those entries.
 */
function eachInRanges(baseline: BaselineReader, ranges: readonly PositionRange[], visit: (i: number, path: Buffer, digest: bigint) => void): void {
  checkSorted(ranges);
  if (!ranges.length) return;
  for (const { key, value } of baseline.encodedUnder(Buffer.from('/'))) {
    const path = keyToPath(key);
    const position = pathPosition(path);
    // The last range starting at or before the position (bisection); counted when it reaches it.
    let lo = 0;
    let hi = ranges.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (ranges[mid]![0] <= position) lo = mid;
      else hi = mid - 1;
    }
    const [start, end] = ranges[lo]!;
    if (position >= start && position <= end) visit(lo, path, entryDigest(path, decodeState(value)));
  }
}

/**
 * The agent's side of reconciliation (docs/delivery.md): per range, the count and XOR of the
 * entry digests of the baseline's paths whose position falls in it. Ranges must be sorted and must
 * not overlap.
 */
export function baselineRangeDigests(baseline: BaselineReader, ranges: readonly PositionRange[]): RangeDigest[] {
  const out = ranges.map(() => emptyRange());
  eachInRanges(baseline, ranges, (i, _path, digest) => addEntry(out[i]!, digest));
  return out;
}

/** Per range (sorted, not overlapping): the baseline's paths in it, with their entry digests. */
export function baselineEntriesIn(baseline: BaselineReader, ranges: readonly PositionRange[]): { path: Buffer; digest: bigint }[][] {
  const out = ranges.map((): { path: Buffer; digest: bigint }[] => []);
  eachInRanges(baseline, ranges, (i, path, digest) => out[i]!.push({ path, digest }));
  return out;
}
