import assert from 'node:assert/strict';
import { openTempStore } from '../../test/support/temp-store.js';
import { describe, it } from 'node:test';
import type { FileState } from '../../core/model.js';
import { sampleState } from '../../test/support/file-states.js';

const state = (size: number): FileState => sampleState(size);

describe('local store', () => {
  it('numbers changes, queues them until acked, and keeps all across a reopen', async () => {
    const temp = openTempStore();
    let store = temp.store;
    const now = new Date();
    const recorded = store.journal.record([
      { path: Buffer.from('/etc/a'), kind: 'created', state: state(1), source: 'scan', detectedAt: now },
      { path: Buffer.from('/etc/b'), kind: 'created', state: state(2), source: 'scan', detectedAt: now },
      { path: Buffer.from('/etc/a'), kind: 'modified', state: state(3), source: 'realtime', detectedAt: now },
    ]);
    assert.deepEqual(recorded.map((d) => d.seq), [1, 2, 3]);
    assert.equal(store.baseline.get(Buffer.from('/etc/a'))?.size, 3);
    assert.equal(store.baseline.get(Buffer.from('/etc/a'))?.mtimeNs, 1_700_000_000_000_000_001n);
    assert.equal(store.outbox.ack(1), 1);
    store = await temp.reopen();
    assert.deepEqual(store.outbox.pending(0, 10).map((d) => d.seq), [2, 3]);
    assert.deepEqual(store.outbox.pending(2, 10).map((d) => d.seq), [3]);
    assert.equal(store.outbox.lastSeq(), 3);
    const next = store.journal.record([{ path: Buffer.from('/etc/b'), kind: 'deleted', state: null, source: 'realtime', detectedAt: now }]);
    assert.equal(next[0]!.seq, 4);
    assert.equal(store.baseline.get(Buffer.from('/etc/b')), undefined);
    await temp.dispose();
  });

  it('renumbers its queue after the controller when local state was rolled back', async () => {
    const temp = openTempStore();
    const store = temp.store;
    const now = new Date();
    store.journal.record([
      { path: Buffer.from('/a'), kind: 'created', state: state(1), source: 'scan', detectedAt: now },
      { path: Buffer.from('/b'), kind: 'created', state: state(2), source: 'scan', detectedAt: now },
    ]);
    assert.equal(store.outbox.renumberAfter(10), 2);
    assert.deepEqual(store.outbox.pending(10, 10).map((d) => [d.seq, d.path.toString()]), [[11, '/a'], [12, '/b']]);
    assert.equal(store.outbox.lastSeq(), 12);
    assert.equal(store.journal.record([{ path: Buffer.from('/c'), kind: 'created', state: state(3), source: 'scan', detectedAt: now }])[0]!.seq, 13);
    await temp.dispose();
  });

  it('bounds its queue on disk: past the bound it records "resync needed" and keeps the baseline moving', async () => {
    const temp = openTempStore();
    const store = temp.store;
    const now = new Date('2026-11-01T00:00:00Z');
    const change = (i: number) => ({ path: Buffer.from(`/b/${i}`), kind: 'created' as const, state: state(i), source: 'realtime' as const, detectedAt: now });
    const one = store.journal.record([change(0)]);
    const size = store.outbox.bytes();
    assert.ok(size > 0);
    // Room for three deltas of this size in all.
    store.meta.setPolicy({ version: 1, rules: [], limits: { maxFilesPerRule: null, nice: 10, ioBytesPerSecond: null, queueBytes: size * 3 + 5 } });
    assert.equal(one[0]!.seq, 1);
    const rest = store.journal.record([change(1), change(2), change(3), change(4)]);
    assert.deepEqual(rest.map((d) => d.seq), [2, 3, 0, 0], 'two more fit; the others are not queued');
    assert.equal(store.outbox.length(), 3);
    assert.equal(store.outbox.bytes(), size * 3);
    assert.deepEqual(store.outbox.resync(), { since: now, unqueued: 2 });
    assert.equal(store.baseline.get(Buffer.from('/b/4'))?.size, 4, 'the baseline still follows the disk');
    // Once flagged, nothing is queued, even when there is room again.
    store.outbox.ack(3);
    assert.equal(store.outbox.bytes(), 0);
    assert.equal(store.journal.record([change(5)])[0]!.seq, 0);
    assert.equal(store.outbox.resync()?.unqueued, 3);
    store.outbox.clearResync();
    assert.equal(store.outbox.resync(), null);
    assert.equal(store.journal.record([change(6)])[0]!.seq, 4, 'numbering goes on without a gap');
    // The flag, the bound and the byte count survive a restart.
    const reopened = await temp.reopen();
    assert.equal(reopened.outbox.limitBytes(), size * 3 + 5);
    assert.equal(reopened.outbox.bytes(), size);
    await temp.dispose();
  });

  it('keeps the most recent gap records and counts them all', async () => {
    const temp = openTempStore();
    const store = temp.store;
    for (let i = 0; i < 25; i++) store.meta.addGap({ at: new Date(1_700_000_000_000 + i), root: `/r${i}`, reason: 'overflow', detail: 'queue overflow', changesFound: i });
    const g = store.meta.gaps();
    assert.equal(g.total, 25);
    assert.equal(g.recent.length, 20);
    assert.equal(g.recent[19]!.root, '/r24');
    assert.ok(g.recent[0]!.at instanceof Date);
    await temp.dispose();
  });

  it('lists baseline entries under a directory by path bytes, not by string prefix', async () => {
    const temp = openTempStore();
    const store = temp.store;
    const now = new Date();
    const paths = ['/srv', '/srv/a', '/srv/a/x', '/srv-other/y', '/srvz'];
    store.journal.record(paths.map((p) => ({ path: Buffer.from(p), kind: 'created' as const, state: state(1), source: 'scan' as const, detectedAt: now })));
    assert.deepEqual([...store.baseline.under(Buffer.from('/srv'))].map((e) => e.path.toString()), ['/srv', '/srv/a', '/srv/a/x']);
    assert.equal([...store.baseline.under(Buffer.from('/'))].length, 5);
    await temp.dispose();
  });
});
