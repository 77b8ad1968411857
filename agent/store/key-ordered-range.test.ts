import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sampleState } from '../../test/support/file-states.js';
import { openTempStore } from '../../test/support/temp-store.js';
import { openBaselineRanges } from './baseline-ranges.js';
import { LONG_PREFIX_BYTES, MAX_KEY_BYTES } from './long-keys.js';
import { keysUnderEnd, keyToPath, pathToKey } from './path-key.js';
import { decodeState } from './state-codec.js';

/** A path of `bytes` bytes under dir, its last name padded with `fill`. */
const pathOf = (dir: string, bytes: number, fill: string) => Buffer.from(`${dir}/${fill.repeat(bytes - dir.length - 1)}`);

describe('baseline keys longer than LMDB takes', () => {
  // Directories of 200-byte names (1,811 bytes): paths of every length around the limit, sharing long prefixes.
  const deep = `/r/${Array.from({ length: 9 }, (_, i) => `${i}`.padEnd(200, 'd')).join('/')}`;
  const paths = [
    Buffer.from('/r'),
    Buffer.from('/r/a'),
    pathOf(deep, MAX_KEY_BYTES, 'm'), // the longest key LMDB takes
    pathOf(deep, MAX_KEY_BYTES + 1, 'm'),
    pathOf(deep, MAX_KEY_BYTES + 1, 'n'),
    pathOf(deep, 4095, 'z'),
    pathOf(deep, 4095, 'b'),
    Buffer.from(`${deep}/b/c/d`.padEnd(LONG_PREFIX_BYTES + 5, 'q')),
    Buffer.from(`${deep}/b`), // a directory above long paths
    Buffer.from(`${deep}/b/${'k'.repeat(250)}/${'k'.repeat(250)}/${'k'.repeat(250)}`),
    Buffer.from(`${deep}/b/${'k'.repeat(250)}/${'k'.repeat(250)}/${'k'.repeat(250)}/x`),
    Buffer.from('/r/zz'),
    Buffer.from('/s'),
  ];
  const walkOrder = (ps: Buffer[]) => [...ps].sort((a, b) => Buffer.compare(pathToKey(a), pathToKey(b)));
  const record = (store: ReturnType<typeof openTempStore>['store'], list: Buffer[]) =>
    store.journal.record(list.map((path, i) => ({ path, kind: 'created' as const, state: sampleState(i + 1), source: 'scan' as const, detectedAt: new Date(0) })));

  it('stores each path whatever its length, and lists them all in walk order, read back by path', async () => {
    const temp = openTempStore();
    try {
      const deltas = record(temp.store, paths);
      assert.deepEqual(deltas.map((d) => d.path), paths, 'the deltas carry the whole paths');
      assert.deepEqual(temp.store.outbox.pending(0, 100).map((d) => d.path), paths, 'queued with the whole paths');
      paths.forEach((p, i) => assert.equal(temp.store.baseline.get(p)?.size, i + 1, `${p.length} bytes`));
      assert.equal(temp.store.baseline.get(pathOf(deep, 4095, 'y')), undefined, 'a long path never recorded');
      assert.equal(temp.store.baseline.size(), paths.length);
      const under = (root: string) => [...temp.store.baseline.under(Buffer.from(root))].map((e) => e.path);
      assert.deepEqual(under('/'), walkOrder(paths));
      assert.deepEqual(under('/r'), walkOrder(paths.filter((p) => p.toString() !== '/s')));
      // A root itself longer than LMDB's keys: its range is cut for LMDB, then bounded exactly.
      const longRoot = `${deep}/b/${'k'.repeat(250)}/${'k'.repeat(250)}/${'k'.repeat(250)}`;
      assert.ok(longRoot.length > MAX_KEY_BYTES);
      assert.deepEqual(under(longRoot).map(String), [longRoot, `${longRoot}/x`]);
      assert.deepEqual(under(`${deep}/b`).length, 4);

      // Removed like any other.
      const gone = [paths[3]!, paths[5]!];
      temp.store.journal.record(gone.map((path) => ({ path, kind: 'deleted' as const, state: null, source: 'scan' as const, detectedAt: new Date(0) })));
      for (const p of gone) assert.equal(temp.store.baseline.get(p), undefined);
      assert.deepEqual(under('/'), walkOrder(paths.filter((p) => !gone.includes(p))));
      assert.equal((await temp.reopen()).baseline.size(), paths.length - 2, 'kept across a reopen');
    } finally {
      await temp.dispose();
    }
  });

  it("gives a scan thread's key ranges in walk order, whole keys included, whatever the bounds' lengths", async () => {
    const temp = openTempStore();
    const ranges = openBaselineRanges(temp.store.location);
    try {
      record(temp.store, paths);
      // The ranges hand out views: copy each entry as the scan does.
      const range = (start: Buffer, end: Buffer) => {
        const out: { path: Buffer; size: number }[] = [];
        for (const e of ranges.range(start, end)) out.push({ path: keyToPath(e.key), size: decodeState(Buffer.from(e.value)).size });
        return out;
      };
      const all = range(Buffer.of(0), Buffer.of(1));
      assert.deepEqual(all.map((e) => e.path), walkOrder(paths));
      for (const e of all) assert.equal(e.size, paths.findIndex((p) => p.equals(e.path)) + 1, 'each key with its own state');
      // Every split of the key space into two ranges, at every key: each entry once, in order.
      for (const p of walkOrder(paths)) {
        const at = pathToKey(p);
        const both = [...range(Buffer.of(0), at), ...range(at, Buffer.of(1))].map((e) => e.path);
        assert.deepEqual(both, walkOrder(paths), `split at a ${at.length}-byte key`);
        assert.deepEqual(range(at, keysUnderEnd(at))[0]?.path, p, 'a range starting at a key starts with it');
      }
    } finally {
      await ranges.close();
      await temp.dispose();
    }
  });
});
