import assert from 'node:assert/strict';
import { openTempStore } from '../../test/support/temp-store.js';
import { describe, it } from 'node:test';
import type { FileState } from '../../core/model.js';
import { addEntry, emptyRange, entryDigest, MAX_POSITION, MIN_POSITION, pathPosition, splitRange } from '../../core/sync-digest.js';
import { baselineEntriesIn, baselineRangeDigests } from './baseline-digests.js';
import { sampleState } from '../../test/support/file-states.js';

const state = (size: number): FileState => sampleState(size, { inode: BigInt(size) });

describe('baseline digests', () => {
  it('digests the baseline over position ranges, and lists a range with its entries', async () => {
    const temp = openTempStore();
    const store = temp.store;
    try {
      const paths = [...Array.from({ length: 50 }, (_, i) => Buffer.from(`/d/f${i}`)), Buffer.from([0x2f, 0x64, 0x2f, 0xff, 0x0a])];
      store.journal.record(paths.map((path, i) => ({ path, kind: 'created', state: state(i), source: 'scan', detectedAt: new Date() })), { queue: false });
      store.journal.record([{ path: paths[7]!, kind: 'deleted', state: null, source: 'scan', detectedAt: new Date() }], { queue: false });
      const held = paths.map((p, i) => [p, state(i)] as const).filter(([p]) => !p.equals(paths[7]!));

      const whole = emptyRange();
      for (const [p, s] of held) addEntry(whole, entryDigest(p, s));
      assert.deepEqual(baselineRangeDigests(store.baseline, [[MIN_POSITION, MAX_POSITION]]), [whole]);

      const parts = splitRange(MIN_POSITION, MAX_POSITION, 8);
      const digests = baselineRangeDigests(store.baseline, parts);
      parts.forEach(([lo, hi], k) => {
        const expected = emptyRange();
        for (const [p, s] of held) if (pathPosition(p) >= lo && pathPosition(p) <= hi) addEntry(expected, entryDigest(p, s));
        assert.deepEqual(digests[k], expected, `part ${k}`);
      });
      // Ranges with gaps between them: what falls in a gap is in no range.
      const [a, b] = [parts[1]!, parts[5]!];
      assert.deepEqual(baselineRangeDigests(store.baseline, [a, b]), [digests[1], digests[5]]);

      const k = digests.findIndex((d) => d.count > 0);
      const [entries, others] = baselineEntriesIn(store.baseline, [parts[k]!, parts[7]!]);
      assert.equal(entries!.length, digests[k]!.count);
      assert.equal(others!.length, digests[7]!.count);
      for (const e of [...entries!, ...others!]) assert.equal(e.digest, entryDigest(e.path, held.find(([p]) => p.equals(e.path))![1]));

      assert.throws(() => baselineRangeDigests(store.baseline, [b, a]), RangeError);
      assert.deepEqual(baselineRangeDigests(store.baseline, []), []);
    } finally {
      await temp.dispose();
    }
  });
});
