import assert from 'node:assert/strict';
import { create } from '@bufbuild/protobuf';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { FileDelta } from '../../../core/model.js';
import { ContractError, deltaToPb } from '../../../proto/convert.js';
import { FileDeltaSchema } from '../../../proto/gen/vigil/v1/types_pb.js';
import { testDatabaseKinds, type TestDatabase } from '../../../test/support/databases.js';
import { sampleState } from '../../../test/support/file-states.js';
import { createAgentStore, createEventStore, type AgentStore, type EventStore } from '../../store/index.js';
import { readDeltaBatch } from './delta-batch.js';

const logger = pino({ level: 'silent' });
const delta = (seq: number, path = `/etc/f${seq}`): FileDelta => ({ seq, path: Buffer.from(path), kind: 'created', state: sampleState(seq), detectedAt: new Date(1_700_000_000_000 + seq), source: 'realtime' });

for (const kind of testDatabaseKinds()) {
  describe(`reading a delta batch on ${kind.name}`, () => {
    let db: TestDatabase;
    let agents: AgentStore;
    let events: EventStore;
    let n = 0;
    const enrolled = async () => {
      const id = `batch-${++n}`;
      await agents.create({ id, hostname: 'h', tokenId: 't', labels: {} });
      return id;
    };
    before(async () => {
      db = await kind.open();
      agents = createAgentStore(db.sql, () => new Date('2026-05-01T00:00:00Z'));
      events = createEventStore(db.sql, () => new Date());
    });
    after(async () => {
      await db.drop();
    });

    it('maps each delta on its own: one whose content cannot be taken is refused alone', async () => {
      const id = await enrolled();
      const bad = create(FileDeltaSchema, { ...deltaToPb(delta(2)), path: Buffer.from('relative/path') });
      const { deltas, refusals } = await readDeltaBatch(id, [deltaToPb(delta(1)), bad, deltaToPb(delta(3))], { agents, events, maxBatch: 10 }, logger);
      assert.deepEqual(deltas.map((d) => d.seq), [1, 3]);
      assert.deepEqual(refusals.map((r) => [r.seq, r.field, r.path?.toString(), r.kind]), [[2, 'path', 'relative/path', 'created']]);
      assert.equal((await agents.get(id))?.deliveryBlocked, null);
    });

    it('a batch too large or holding a seq twice is refused whole and blocks delivery at the first seq not committed', async () => {
      for (const [batch, message] of [
        [[delta(1), delta(2), delta(3)], /batch of 3 deltas exceeds 2/],
        [[delta(1), delta(1, '/etc/other')], /the same seq twice/],
      ] as const) {
        const id = await enrolled();
        await assert.rejects(readDeltaBatch(id, batch.map(deltaToPb), { agents, events, maxBatch: 2 }, logger), (e: unknown) => e instanceof ContractError && message.test(e.message));
        const blocked = (await agents.get(id))?.deliveryBlocked;
        assert.equal(blocked?.seq, 1);
        assert.match(blocked?.reason ?? '', message);
      }
    });
  });
}
