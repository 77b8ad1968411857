import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { FileDelta } from '../../core/model.js';
import { AGENT_BATCH_BYTES } from '../../proto/wire-limits.js';
import { openTempStore } from '../../test/support/temp-store.js';
import type { Change } from '../store/journal.js';
import { createOutboxPump, StreamEnded } from './outbox-pump.js';

const change = (i: number, pathBytes = 10): Change => ({
  path: Buffer.from(`/f${i}`.padEnd(pathBytes, 'x')),
  kind: 'created',
  state: null,
  source: 'scan',
  detectedAt: new Date(0),
});

describe('outbox pump', () => {
  const temp = openTempStore('vigil-pump-');
  after(() => temp.dispose());

  it('sends nothing before the welcome, then in order after the committed seq, within the in-flight bound', () => {
    const { store } = temp;
    store.journal.record(Array.from({ length: 25 }, (_, i) => change(i)));
    const sent: FileDelta[][] = [];
    const pump = createOutboxPump({ outbox: store.outbox, send: (d) => sent.push([...d]), batchSize: 4, maxInFlight: 10 });
    pump.pump();
    assert.equal(sent.length, 0, 'not welcomed yet');
    pump.start(3); // the controller has 1-3
    assert.deepEqual(sent.flat().map((d) => d.seq), [4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    assert.ok(sent.every((b) => b.length <= 4));
    pump.acked(9);
    assert.equal(store.outbox.length(), 25 - 9, 'acked deltas leave the outbox');
    assert.equal(sent.flat().at(-1)!.seq, 19, 'the bound moves with the ack');
    pump.end();
  });

  it('cuts batches by bytes as well as by count', async () => {
    const t = openTempStore('vigil-pump-bytes-');
    try {
      t.store.journal.record(Array.from({ length: 100 }, (_, i) => change(i, 1900)));
      const sent: FileDelta[][] = [];
      const pump = createOutboxPump({ outbox: t.store.outbox, send: (d) => sent.push([...d]), batchSize: 500, maxInFlight: 5000 });
      pump.start(0);
      assert.equal(sent.flat().length, 100);
      assert.ok(sent.length > 1, 'more than one batch');
      for (const b of sent) assert.ok(b.reduce((n, d) => n + d.path.length, 0) <= AGENT_BATCH_BYTES);
      pump.end();
    } finally {
      await t.dispose();
    }
  });

  it('allSent waits for every recorded delta to be sent, and fails when the stream ends', async () => {
    const t = openTempStore('vigil-pump-wait-');
    try {
      t.store.journal.record(Array.from({ length: 5 }, (_, i) => change(i)));
      const pump = createOutboxPump({ outbox: t.store.outbox, send: () => undefined, batchSize: 2, maxInFlight: 2 });
      pump.start(0);
      let resolved = false;
      const waiting = pump.allSent().then(() => (resolved = true));
      await new Promise((r) => setImmediate(r));
      assert.equal(resolved, false, '2 of 5 in flight');
      pump.acked(2);
      pump.acked(4);
      await waiting;
      assert.equal(resolved, true);
      t.store.journal.record([change(9)]);
      const ended = pump.allSent();
      pump.end();
      await assert.rejects(ended, StreamEnded);
    } finally {
      await t.dispose();
    }
  });
});
