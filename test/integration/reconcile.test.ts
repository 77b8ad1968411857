/**
 * Reconciliation between a real agent store (LMDB) and a real controller store (PGlite, and
 * Postgres when DATABASE_URL is set), wired directly: the agent's reconcile() against the
 * controller's responder, repairs delivered through the ingest as the stream would.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { openLocalStore, type Change, type LocalStore } from '../../agent/store/local-store.js';
import { reconcile, type SyncChannel } from '../../agent/sync/reconciler.js';
import { createReconcileResponder } from '../../controller/reconcile/reconcile-responder.js';
import { createAgentStore, createEventStore, createSyncStore, type EventStore } from '../../controller/store/index.js';
import { entryDigest, pathPosition } from '../../core/sync-digest.js';
import { sampleState } from '../support/file-states.js';
import { testDatabaseKinds, type TestDatabase } from '../support/databases.js';
import { tempRoot } from '../support/controllers.js';

const AGENT = 'agent-reconcile';

for (const kind of testDatabaseKinds()) {
  describe(`reconciliation on ${kind.name}`, () => {
    const tmp = tempRoot('vigil-reconcile-');
    let db: TestDatabase;
    let store: LocalStore;
    let events: EventStore;
    before(async () => {
      db = await kind.open();
      store = openLocalStore(tmp.root);
      events = createEventStore(db.sql, () => new Date());
      await createAgentStore(db.sql, () => new Date()).create({ id: AGENT, hostname: 'h', tokenId: 't', labels: {} });
    });
    after(async () => {
      await store.close();
      await db.drop();
      tmp.remove();
    });

    /** What the stream does: everything queued goes to the ingest, then is acked. */
    const deliver = async () => {
      const pending = store.outbox.pending(await events.committedSeq(AGENT), 100_000);
      if (!pending.length) return;
      const res = await events.ingest(AGENT, pending, () => null);
      store.outbox.ack(res.committedSeq);
    };
    const channelFor = (afterAnswer?: () => void): SyncChannel => {
      const r = createReconcileResponder(createSyncStore(db.sql));
      return {
        compareRanges: async (build) => r.compareRanges(AGENT, build()),
        async compareEntries(build) {
          const answer = await r.compareEntries(AGENT, build());
          afterAnswer?.();
          return answer;
        },
      };
    };
    const recorded: Change[][] = [];
    const run = (opts: { leafEntries?: number; split?: number; afterAnswer?: () => void } = {}) =>
      reconcile(channelFor(opts.afterAnswer), {
        baseline: store.baseline,
        recordRepairs: async (repairs) => {
          const changes = repairs();
          if (changes.length) {
            recorded.push(changes);
            store.journal.record(changes);
          }
          return changes.length;
        },
        covers: (p) => !p.toString().startsWith('/uncovered/'),
        clock: () => new Date(),
        logger: pino({ level: 'silent' }),
        ...opts,
      });
    const change = (path: string, size: number, kind: Change['kind'] = 'created'): Change => ({
      path: Buffer.from(path),
      kind,
      state: sampleState(size),
      source: 'scan',
      detectedAt: new Date(),
    });

    it('finds nothing when both sides hold the same state, in one exchange', async () => {
      store.journal.record(Array.from({ length: 500 }, (_, i) => change(`/srv/f${i}`, i)));
      await deliver();
      const r = await run();
      assert.deepEqual(r, { repairs: 0, ranges: 1, leaves: 0 });
    });

    it('repairs rows the controller lost, got wrong or should not have, and records them as reconcile events', async () => {
      // Damage the controller's state behind the ingest's back.
      await db.sql.query(`delete from file_state where agent_id = $1 and path_text in ('/srv/f1', '/srv/f2', '/srv/f3')`, [AGENT]);
      await db.sql.query(`update file_state set size = 1, entry_digest = 12345 where agent_id = $1 and path_text in ('/srv/f10', '/srv/f11')`, [AGENT]);
      for (const p of ['/srv/ghost', '/uncovered/old']) {
        const path = Buffer.from(p);
        const st = sampleState(7);
        await db.sql.query(
          `insert into file_state (agent_id, path, path_text, file_type, size, mode, uid, gid, mtime_ns, ctime_ns, inode, nlink, updated_seq, path_position, entry_digest)
           values ($1, $2, $3, 'regular', 7, 33188, 0, 0, 0, 0, 1, 1, 0, $4, $5)`,
          [AGENT, path, p, pathPosition(path).toString(), entryDigest(path, st).toString()],
        );
      }
      const before = await events.committedSeq(AGENT);
      recorded.length = 0;
      // Small leaves and splits: several levels of ranges on 500 entries.
      const r = await run({ leafEntries: 4, split: 16 });
      assert.equal(r.repairs, 7);
      assert.ok(r.ranges > 16, `split into sub-ranges (${r.ranges})`);
      const byPath = new Map(recorded.flat().map((c) => [c.path.toString(), c]));
      assert.deepEqual(
        [...byPath].map(([p, c]) => [p, c.kind, c.source]).sort(),
        [
          ['/srv/f1', 'created', 'reconcile'],
          ['/srv/f10', 'modified', 'reconcile'],
          ['/srv/f11', 'modified', 'reconcile'],
          ['/srv/f2', 'created', 'reconcile'],
          ['/srv/f3', 'created', 'reconcile'],
          ['/srv/ghost', 'deleted', 'reconcile'],
          ['/uncovered/old', 'refreshed', 'reconcile'],
        ],
      );
      await deliver();
      const history = (await events.list({ agentId: AGENT, limit: 1000, since: new Date(0) })).events;
      const repairs = history.filter((e) => e.delta.seq > before);
      assert.equal(repairs.length, 6, 'six repairs are history; the path leaving the policy is not');
      assert.ok(repairs.every((e) => e.delta.source === 'reconcile'));
      // Now equal: the next round finds nothing, and the controller holds exactly the baseline.
      assert.deepEqual(await run(), { repairs: 0, ranges: 1, leaves: 0 });
      const rows = await db.sql.query('select path_text, size from file_state where agent_id = $1', [AGENT]);
      assert.equal(rows.length, 500);
      assert.equal(Number(rows.find((x) => x.path_text === '/srv/f10')!.size), 10);
    });

    it('skips a repair for an entry that changed after its digest was sent (its own delta is queued)', async () => {
      await db.sql.query(`delete from file_state where agent_id = $1 and path_text in ('/srv/f20', '/srv/f21')`, [AGENT]);
      recorded.length = 0;
      const r = await run({
        afterAnswer: () => {
          // A real-time change lands between the digests and the answer.
          store.journal.record([change('/srv/f20', 2020, 'modified')]);
        },
      });
      assert.equal(r.repairs, 1);
      assert.deepEqual(recorded.flat().map((c) => c.path.toString()), ['/srv/f21']);
      await deliver();
      assert.deepEqual(await run(), { repairs: 0, ranges: 1, leaves: 0 });
    });
  });
}
