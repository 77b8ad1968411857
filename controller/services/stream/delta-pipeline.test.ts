import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createDeltaPipeline } from './delta-pipeline.js';

/** A commit the test finishes when it wants. */
function pendingWork() {
  let done!: () => void;
  let fail!: (err: Error) => void;
  const promise = new Promise<void>((resolve, reject) => {
    done = resolve;
    fail = reject;
  });
  return { promise, done, fail };
}

const settled = async (p: Promise<unknown>) => {
  let state = 'pending';
  p.then(() => (state = 'resolved'), () => (state = 'rejected'));
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  return state;
};

describe('delta pipeline of one stream', () => {
  it('reads ahead while earlier messages wait for their commit, up to the delta limit', async () => {
    const p = createDeltaPipeline(() => 0, { maxBatches: 16, maxDeltas: 10, maxQueued: 1000, smallFlow: 0 });
    const works = Array.from({ length: 3 }, pendingWork);
    for (const w of works.slice(0, 2)) {
      await p.room(4);
      p.add(w.promise, 4);
    }
    const third = p.room(4);
    assert.equal(await settled(third), 'pending', '12 of 10 deltas: held back');
    works[0]!.done();
    assert.equal(await settled(third), 'resolved');
  });

  it('a message larger than the limit is still taken alone, never two at once', async () => {
    const p = createDeltaPipeline(() => 0, { maxBatches: 16, maxDeltas: 10, maxQueued: 1000, smallFlow: 0 });
    await p.room(500);
    const w = pendingWork();
    p.add(w.promise, 500);
    assert.equal(await settled(p.room(1)), 'pending');
  });

  it('reads nothing ahead while the whole ingest queue is full', async () => {
    let queued = 50_000;
    const p = createDeltaPipeline(() => queued, { maxBatches: 16, maxDeltas: 1000, maxQueued: 50_000, smallFlow: 0 });
    await p.room(1); // the first message of a stream is always taken: every agent progresses
    const w = pendingWork();
    p.add(w.promise, 1);
    const next = p.room(1);
    assert.equal(await settled(next), 'pending');
    queued = 0;
    w.done();
    assert.equal(await settled(next), 'resolved');
  });

  it('a small flow reads on while the whole queue is full, up to its own small limit; a burst does not', async () => {
    const full = () => 60_000;
    const quiet = createDeltaPipeline(full, { maxBatches: 16, maxDeltas: 1000, maxQueued: 50_000, smallFlow: 3 });
    for (let i = 0; i < 3; i++) {
      assert.equal(await settled(quiet.room(1)), 'resolved', `delta ${i + 1} of a quiet host`);
      quiet.add(pendingWork().promise, 1);
    }
    assert.equal(await settled(quiet.room(1)), 'pending', 'a fourth would pass its small limit');
    const burst = createDeltaPipeline(full, { maxBatches: 16, maxDeltas: 1000, maxQueued: 50_000, smallFlow: 3 });
    await burst.room(500);
    burst.add(pendingWork().promise, 500);
    assert.equal(await settled(burst.room(500)), 'pending');
    assert.equal(await settled(burst.room(1)), 'pending', 'a stream holding more than a small flow is held back');
  });

  it('the first failure is what room and drain answer from then on', async () => {
    const p = createDeltaPipeline(() => 0);
    const w = pendingWork();
    p.add(w.promise, 1);
    const drained = p.drain();
    w.fail(new Error('revoked'));
    await assert.rejects(drained, /revoked/);
    await assert.rejects(p.room(1), /revoked/);
  });

  it('drain waits for every message added', async () => {
    const p = createDeltaPipeline(() => 0);
    const a = pendingWork();
    const b = pendingWork();
    p.add(a.promise, 1);
    p.add(b.promise, 1);
    const drained = p.drain();
    a.done();
    assert.equal(await settled(drained), 'pending');
    b.done();
    assert.equal(await settled(drained), 'resolved');
  });
});
