import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FileDelta } from '../../core/model.js';
import type { IngestBatch, IngestResult } from '../store/index.js';
import { createIngestQueue } from './ingest-queue.js';

function delta(seq: number): FileDelta {
  return { seq, path: Buffer.from(`/f${seq}`), kind: 'created', state: null, detectedAt: new Date(0), source: 'realtime' };
}

const batchOf = (agentId: string, from: number, n: number): IngestBatch => ({
  agentId,
  deltas: Array.from({ length: n }, (_, i) => delta(from + i)),
  refusals: [],
  alertRuleFor: () => null,
});

/**
 * A store that commits groups when told to: records each group, keeps each agent's committed
 * seq, and checks that no agent is in two groups at once and that seqs arrive in order.
 */
function fakeStore(opts: { revoked?: string[]; failFor?: string } = {}) {
  const groups: { agentId: string; seqs: number[] }[][] = [];
  const committed = new Map<string, number>();
  const inFlight = new Set<string>();
  const gates: { group: number; open: () => void }[] = [];
  let auto = false;
  const ingest = async (batches: readonly IngestBatch[]): Promise<IngestResult[]> => {
    for (const b of batches) {
      assert.ok(!inFlight.has(b.agentId), `${b.agentId} is in two group commits at once`);
      inFlight.add(b.agentId);
    }
    const group = groups.push(batches.map((b) => ({ agentId: b.agentId, seqs: b.deltas.map((d) => d.seq) }))) - 1;
    if (!auto) await new Promise<void>((open) => gates.push({ group, open }));
    for (const b of batches) inFlight.delete(b.agentId);
    if (opts.failFor && batches.some((b) => b.agentId === opts.failFor)) throw new Error('constraint violated');
    return batches.map((b) => {
      if (opts.revoked?.includes(b.agentId)) return { revoked: true, committedSeq: 0, stored: [], alerts: [], refused: [] };
      const before = committed.get(b.agentId) ?? 0;
      const fresh = b.deltas.filter((d) => d.seq > before);
      assert.deepEqual(fresh.map((d) => d.seq), [...fresh.map((d) => d.seq)].sort((x, y) => x - y));
      const seq = Math.max(before, ...b.deltas.map((d) => d.seq), ...b.refusals.map((r) => r.seq));
      committed.set(b.agentId, seq);
      return { revoked: false, committedSeq: seq, stored: fresh, alerts: [], refused: [...b.refusals] };
    });
  };
  return {
    ingest,
    groups,
    /** Lets the oldest waiting group commit, or the group with this index (in `groups`). */
    release: async (group?: number) => {
      const at = () => (group === undefined ? (gates.length ? 0 : -1) : gates.findIndex((g) => g.group === group));
      while (at() < 0) await new Promise((r) => setImmediate(r));
      gates.splice(at(), 1)[0]!.open();
    },
    runFreely: () => {
      auto = true;
      for (const g of gates.splice(0)) g.open();
    },
  };
}

describe('ingest queue', () => {
  it('a quiet agent\'s one delta is committed before any bursting agent\'s second slice', async () => {
    const store = fakeStore();
    const queue = createIngestQueue(store.ingest, { concurrency: 1, groupMax: 1000, agentSlice: 100, expressMax: 0 });
    const burst = Array.from({ length: 20 }, (_, a) => queue.submit(batchOf(`burst-${a}`, 1, 500)));
    const quiet = queue.submit(batchOf('quiet', 1, 1));
    store.runFreely();
    const [q, ...rest] = await Promise.all([quiet, ...burst]);
    assert.deepEqual(q!.stored.map((d) => d.seq), [1]);
    for (const r of rest) {
      assert.equal(r.committedSeq, 500, 'a big batch is committed whole, over several slices');
      assert.equal(r.stored.length, 500);
    }
    assert.ok(store.groups.every((g) => g.every((s) => s.seqs.length <= 100)), 'no agent gets more than its slice');
    assert.ok(store.groups.every((g) => g.reduce((n, s) => n + s.seqs.length, 0) < 1000 + 100), 'a group stops at groupMax');
    // Batch by batch, the quiet delta would wait behind 10,000 deltas; here, behind no one's second slice.
    const quietGroup = store.groups.findIndex((g) => g.some((s) => s.agentId === 'quiet'));
    const seen = new Set<string>();
    const firstRepeat = store.groups.findIndex((g) => g.some((s) => seen.has(s.agentId)) || (g.forEach((s) => seen.add(s.agentId)), false));
    assert.ok(quietGroup >= 0 && quietGroup <= firstRepeat, `quiet in group ${quietGroup}, a second slice first in group ${firstRepeat}`);
    assert.ok(quietGroup <= 3);
    assert.deepEqual(queue.stats(), { agents: 0, pending: 0, running: 0 });
  });

  it('an agent with nothing queued before goes to the front: its delta is in the next group commit', async () => {
    const store = fakeStore();
    const queue = createIngestQueue(store.ingest, { concurrency: 1, groupMax: 500, agentSlice: 100, minSlice: 100, expressMax: 0 });
    const burst = Array.from({ length: 20 }, (_, a) => queue.submit(batchOf(`b${a}`, 1, 1000)));
    await store.release();
    await store.release();
    await store.release(); // three groups in, and the fourth is being committed: the line is long
    while (store.groups.length < 4) await new Promise((r) => setImmediate(r));
    const quiet = queue.submit(batchOf('quiet', 1, 1));
    await store.release();
    await store.release();
    assert.equal((await quiet).committedSeq, 1);
    assert.ok(store.groups[4]!.some((g) => g.agentId === 'quiet'), 'in the group right after the one running when it came');
    store.runFreely();
    await Promise.all(burst);
  });

  it('the express lane: sparse flows go in a small group of their own at once, one express group at a time; others wait their turn', async () => {
    const store = fakeStore();
    const queue = createIngestQueue(store.ingest, { concurrency: 2, groupMax: 500, agentSlice: 100, minSlice: 10, expressMax: 20 });
    const burst = [queue.submit(batchOf('a1', 1, 300)), queue.submit(batchOf('a2', 1, 300))];
    assert.deepEqual(store.groups.map((g) => g.map((s) => [s.agentId, s.seqs.length])), [[['a1', 100]], [['a2', 100]]]);
    // Both group commits busy: the quiet agent's delta goes in a group of its own at once.
    const quiet = queue.submit(batchOf('quiet', 1, 1));
    assert.deepEqual(store.groups[2], [{ agentId: 'quiet', seqs: [1] }]);
    const quieter = queue.submit(batchOf('quieter', 1, 2));
    const big = queue.submit(batchOf('big', 1, 30)); // more than minSlice: not a sparse flow
    const quietest = queue.submit(batchOf('quietest', 1, 1));
    await new Promise((r) => setImmediate(r));
    assert.equal(store.groups.length, 3, 'one express group at a time: the others wait');
    assert.equal(queue.stats().running, 3);
    await store.release(2);
    assert.equal((await quiet).committedSeq, 1, 'committed while both big group commits still run');
    while (store.groups.length < 4) await new Promise((r) => setImmediate(r));
    assert.deepEqual(store.groups[3], [{ agentId: 'quieter', seqs: [1, 2] }, { agentId: 'quietest', seqs: [1] }], 'the next express group: the sparse flows, not the bigger newcomer');
    assert.deepEqual(store.groups.slice(0, 2).map((g) => g.map((s) => s.seqs.length)), [[100], [100]], 'nothing else ran meanwhile');
    await store.release(0);
    while (store.groups.length < 5) await new Promise((r) => setImmediate(r));
    assert.equal(store.groups[4]![0]!.agentId, 'big', 'the newcomer first in the next ordinary group');
    store.runFreely();
    assert.deepEqual(await Promise.all([quieter, quietest, big].map(async (p) => (await p).committedSeq)), [2, 1, 30]);
    for (const r of await Promise.all(burst)) assert.equal(r.committedSeq, 300);
    assert.ok(store.groups.every((g) => g.reduce((n, s) => n + s.seqs.length, 0) <= 500));
  });

  it('more sparse flows than one express group holds also go in the ordinary groups', async () => {
    const store = fakeStore();
    const queue = createIngestQueue(store.ingest, { concurrency: 2, groupMax: 500, minSlice: 10, expressMax: 5 });
    const quiet = Array.from({ length: 40 }, (_, a) => queue.submit(batchOf(`q${a}`, 1, 1)));
    // The first in the express lane; once more wait than it holds, the ordinary groups take them too.
    assert.deepEqual(store.groups[0], [{ agentId: 'q0', seqs: [1] }]);
    assert.equal(queue.stats().running, 3, 'the express group and both ordinary ones');
    assert.deepEqual(store.groups.slice(1).map((g) => g.length), [6, 6]);
    store.runFreely();
    await Promise.all(quiet);
    assert.equal(store.groups.reduce((n, g) => n + g.length, 0), 40);
  });

  it('an express lane of 0 is off: a quiet agent waits for a free group commit', async () => {
    const store = fakeStore();
    const queue = createIngestQueue(store.ingest, { concurrency: 1, expressMax: 0 });
    const busy = queue.submit(batchOf('busy', 1, 5));
    const quiet = queue.submit(batchOf('quiet', 1, 1));
    await new Promise((r) => setImmediate(r));
    assert.equal(store.groups.length, 1);
    store.runFreely();
    await Promise.all([busy, quiet]);
    assert.deepEqual(store.groups[1], [{ agentId: 'quiet', seqs: [1] }]);
  });

  it('bursting agents progress alike: every agent\'s batch is done within one round of the others', async () => {
    const store = fakeStore();
    store.runFreely();
    const queue = createIngestQueue(store.ingest, { concurrency: 2, groupMax: 300, agentSlice: 50 });
    const order: string[] = [];
    await Promise.all(Array.from({ length: 12 }, (_, a) => queue.submit(batchOf(`a${a}`, 1, 400)).then(() => order.push(`a${a}`))));
    // Round-robin: an agent's last slice comes within one round (12 slices) of every other's.
    const lastGroup = new Map<string, number>();
    store.groups.forEach((g, i) => g.forEach((s) => lastGroup.set(s.agentId, i)));
    const ends = [...lastGroup.values()].sort((a, b) => a - b);
    const median = ends[Math.floor(ends.length / 2)]!;
    assert.ok(ends.at(-1)! <= median * 1.2, `the last agent done at group ${ends.at(-1)}, the median agent at ${median}`);
    assert.ok(ends.at(-1)! - ends[0]! <= 4, `first and last agents done ${ends.at(-1)! - ends[0]!} groups apart`);
    assert.equal(order.length, 12);
  });

  it('one agent\'s batches commit in the order submitted, never two at once', async () => {
    const store = fakeStore();
    store.runFreely();
    const queue = createIngestQueue(store.ingest, { concurrency: 4, groupMax: 100, agentSlice: 30 });
    const results = await Promise.all([queue.submit(batchOf('a', 1, 70)), queue.submit(batchOf('a', 71, 70)), queue.submit(batchOf('a', 141, 5))]);
    // Each batch's ack covers at least the batch (a slice reaching into the next batch covers more).
    assert.ok(results.every((r, i) => r.committedSeq >= [70, 140, 145][i]! && (i === 0 || r.committedSeq >= results[i - 1]!.committedSeq)));
    assert.equal(results[2]!.committedSeq, 145);
    assert.deepEqual(results.map((r) => r.stored.length), [70, 70, 5], 'each batch is told what of it was stored');
    const seqs = store.groups.flat().flatMap((g) => g.seqs);
    assert.deepEqual(seqs, Array.from({ length: 145 }, (_, i) => i + 1));
  });

  it('one agent\'s queued one-delta batches go into one group commit together; two streams\' resends never share one', async () => {
    const store = fakeStore();
    const queue = createIngestQueue(store.ingest, { concurrency: 1, agentSlice: 100, expressMax: 0 });
    const first = queue.submit(batchOf('busy', 1, 1)); // holds the only group commit
    const quiet = Array.from({ length: 6 }, (_, i) => queue.submit(batchOf('quiet', i + 1, 1)));
    // A second stream of the same agent resends seqs 3 and 4: its batch waits for a slice of its own.
    const resend = queue.submit(batchOf('quiet', 3, 2));
    await store.release();
    await first;
    await store.release();
    const results = await Promise.all(quiet);
    assert.deepEqual(store.groups[1], [{ agentId: 'quiet', seqs: [1, 2, 3, 4, 5, 6] }], 'six batches, one slice');
    assert.deepEqual(results.map((r) => r.stored.map((d) => d.seq)), [[1], [2], [3], [4], [5], [6]], 'each batch is told what of it was stored');
    assert.ok(results.every((r) => r.committedSeq === 6), 'every batch may ack what its commit covered');
    await store.release();
    assert.deepEqual((await resend).stored, [], 'the resend, alone, stores nothing');
    assert.deepEqual(store.groups[2], [{ agentId: 'quiet', seqs: [3, 4] }]);
  });

  it('refusals commit in seq order with the deltas around them', async () => {
    const store = fakeStore();
    store.runFreely();
    const queue = createIngestQueue(store.ingest, { agentSlice: 2 });
    const refusal = { seq: 2, field: 'path', reason: 'relative', path: null, kind: null };
    const r = await queue.submit({ ...batchOf('a', 1, 1), deltas: [delta(1), delta(3)], refusals: [refusal] });
    assert.equal(r.committedSeq, 3);
    assert.deepEqual(r.refused, [refusal]);
    assert.deepEqual(store.groups.map((g) => g[0]!.seqs), [[1], [3]], 'the refusal took its place in the first slice');
  });

  it('deltas and refusals interleaved across slices and batches: each slice in seq order, each batch told exactly its own', async () => {
    const store = fakeStore();
    const seen: number[][] = [];
    const ingest = async (batches: readonly IngestBatch[]) => {
      for (const b of batches) seen.push([...b.deltas.map((d) => d.seq), ...b.refusals.map((r) => r.seq)].sort((x, y) => x - y));
      return store.ingest(batches);
    };
    store.runFreely();
    const queue = createIngestQueue(ingest, { agentSlice: 4 });
    const refusal = (seq: number) => ({ seq, field: 'path', reason: 'relative', path: null, kind: null });
    // Batch one: seqs 1-10, every third a refusal, the deltas handed over out of order; batch two: 11-13.
    const one = queue.submit({ ...batchOf('a', 1, 0), deltas: [10, 8, 1, 2, 4, 5, 7].map(delta), refusals: [9, 3, 6].map(refusal) });
    const two = queue.submit({ ...batchOf('a', 11, 2), refusals: [refusal(13)] });
    const [r1, r2] = await Promise.all([one, two]);
    assert.deepEqual(seen, [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13]], 'four items a slice, in seq order, the last slice of batch one reaching into batch two');
    assert.deepEqual(r1.stored.map((d) => d.seq), [1, 2, 4, 5, 7, 8, 10]);
    assert.deepEqual(r1.refused.map((r) => r.seq), [3, 6, 9]);
    assert.deepEqual(r2.stored.map((d) => d.seq), [11, 12]);
    assert.deepEqual(r2.refused.map((r) => r.seq), [13]);
    assert.equal(r2.committedSeq, 13);
    assert.deepEqual(queue.stats(), { agents: 0, pending: 0, running: 0 });
  });

  it('a failing group is retried agent by agent: only the bad agent\'s batch fails', async () => {
    const store = fakeStore({ failFor: 'bad' });
    store.runFreely();
    const queue = createIngestQueue(store.ingest, { concurrency: 1 });
    const good = queue.submit(batchOf('good', 1, 3));
    const bad = queue.submit(batchOf('bad', 1, 3));
    const later = queue.submit(batchOf('bad', 4, 3));
    await assert.rejects(bad, /constraint violated/);
    await assert.rejects(later, /constraint violated/, 'the bad agent\'s queued batches fail with it');
    assert.equal((await good).committedSeq, 3);
    assert.deepEqual(queue.stats(), { agents: 0, pending: 0, running: 0 });
  });

  it('a revoked agent: this batch and its queued ones come back revoked, nothing more is offered to the store', async () => {
    const store = fakeStore({ revoked: ['gone'] });
    const queue = createIngestQueue(store.ingest, { concurrency: 1, agentSlice: 10 });
    const first = queue.submit(batchOf('gone', 1, 25));
    const second = queue.submit(batchOf('gone', 26, 5));
    await store.release();
    assert.equal((await first).revoked, true);
    assert.equal((await second).revoked, true);
    assert.equal(store.groups.length, 1);
    await queue.idle();
    assert.deepEqual(queue.stats(), { agents: 0, pending: 0, running: 0 });
  });

  it('an agent whose row is locked elsewhere is offered again later, without holding up the others', async () => {
    const store = fakeStore();
    store.runFreely();
    let lockedFor = 3;
    const queue = createIngestQueue(
      async (batches) => {
        const results = await store.ingest(batches.filter((b) => b.agentId !== 'locked' || lockedFor === 0));
        return batches.map((b) => (b.agentId === 'locked' && lockedFor > 0 ? (lockedFor--, null) : results.shift()!));
      },
      { lockedRetryMs: 1 },
    );
    const locked = queue.submit(batchOf('locked', 1, 3));
    const other = await queue.submit(batchOf('other', 1, 2));
    assert.equal(other.committedSeq, 2);
    assert.equal((await locked).committedSeq, 3, 'committed once its row was free');
    assert.equal(lockedFor, 0);
    await queue.idle();
    assert.deepEqual(queue.stats(), { agents: 0, pending: 0, running: 0 });
  });

  it('an empty batch still reports the committed seq', async () => {
    const store = fakeStore();
    store.runFreely();
    const queue = createIngestQueue(store.ingest);
    await queue.submit(batchOf('a', 1, 4));
    assert.equal((await queue.submit(batchOf('a', 1, 0))).committedSeq, 4);
  });

  it('refuses options that are not whole positive numbers', () => {
    assert.throws(() => createIngestQueue(store().ingest, { groupMax: 0 }), /groupMax/);
    function store() {
      return fakeStore();
    }
  });
});
