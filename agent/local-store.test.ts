import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { FileState } from '../proto/model.js';
import { openLocalStore } from './local-store.js';
import { sampleState } from '../test/support/file-states.js';

const state = (size: number): FileState => sampleState(size);

describe('local store', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-ls-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('numbers changes, queues them until acked, and keeps all across a reopen', async () => {
    let store = openLocalStore(dir);
    const now = new Date();
    const recorded = store.record([
      { path: Buffer.from('/etc/a'), kind: 'created', state: state(1), source: 'scan', detectedAt: now },
      { path: Buffer.from('/etc/b'), kind: 'created', state: state(2), source: 'scan', detectedAt: now },
      { path: Buffer.from('/etc/a'), kind: 'modified', state: state(3), source: 'realtime', detectedAt: now },
    ]);
    assert.deepEqual(recorded.map((d) => d.seq), [1, 2, 3]);
    assert.equal(store.getBaseline(Buffer.from('/etc/a'))?.size, 3);
    assert.equal(store.getBaseline(Buffer.from('/etc/a'))?.mtimeNs, 1_700_000_000_000_000_001n);
    assert.equal(store.ack(1), 1);
    await store.close();
    store = openLocalStore(dir);
    assert.deepEqual(store.pending(0, 10).map((d) => d.seq), [2, 3]);
    assert.deepEqual(store.pending(2, 10).map((d) => d.seq), [3]);
    assert.equal(store.lastSeq(), 3);
    const next = store.record([{ path: Buffer.from('/etc/b'), kind: 'deleted', state: null, source: 'realtime', detectedAt: now }]);
    assert.equal(next[0]!.seq, 4);
    assert.equal(store.getBaseline(Buffer.from('/etc/b')), undefined);
    await store.close();
  });

  it('renumbers its queue after the controller when local state was rolled back', async () => {
    const store = openLocalStore(join(dir, 'rolled'));
    const now = new Date();
    store.record([
      { path: Buffer.from('/a'), kind: 'created', state: state(1), source: 'scan', detectedAt: now },
      { path: Buffer.from('/b'), kind: 'created', state: state(2), source: 'scan', detectedAt: now },
    ]);
    assert.equal(store.renumberAfter(10), 2);
    assert.deepEqual(store.pending(10, 10).map((d) => [d.seq, d.path.toString()]), [[11, '/a'], [12, '/b']]);
    assert.equal(store.lastSeq(), 12);
    assert.equal(store.record([{ path: Buffer.from('/c'), kind: 'created', state: state(3), source: 'scan', detectedAt: now }])[0]!.seq, 13);
    await store.close();
  });

  it('lists baseline entries under a directory by path bytes, not by string prefix', async () => {
    const store = openLocalStore(join(dir, 'two'));
    const now = new Date();
    const paths = ['/srv', '/srv/a', '/srv/a/x', '/srv-other/y', '/srvz'];
    store.record(paths.map((p) => ({ path: Buffer.from(p), kind: 'created' as const, state: state(1), source: 'scan' as const, detectedAt: now })));
    assert.deepEqual([...store.baselineUnder(Buffer.from('/srv'))].map((e) => e.path.toString()), ['/srv', '/srv/a', '/srv/a/x']);
    assert.equal([...store.baselineUnder(Buffer.from('/'))].length, 5);
    await store.close();
  });
});
