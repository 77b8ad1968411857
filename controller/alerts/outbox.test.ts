import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { FileDelta } from '../../core/model.js';
import { testDatabaseKinds, type TestDatabase } from '../../test/support/databases.js';
import { sampleState } from '../../test/support/file-states.js';
import { waitFor } from '../../test/support/processes.js';
import { createAgentStore, createAlertStore, createEventStore, type AlertStore, type Clock, type EventStore } from '../store/index.js';
import type { Alert, Notifier } from './notifier.js';
import { createAlertOutbox, SWEEP_GRACE_MS, toAlert } from './outbox.js';

const logger = pino({ level: 'silent' });

/** A notifier that records what it was asked to send, and fails while `down` is set. */
function recordingNotifier(): Notifier & { sent: Alert[]; attempts: Alert[]; down: boolean } {
  return {
    name: 'recording',
    sent: [],
    attempts: [],
    down: false,
    async notify(alert) {
      this.attempts.push(alert);
      if (this.down) throw new Error('notifier down');
      this.sent.push(alert);
    },
    async security() {},
  };
}

const delta = (seq: number, path: Buffer | string, kind: FileDelta['kind'] = 'modified'): FileDelta => ({
  seq,
  path: Buffer.isBuffer(path) ? path : Buffer.from(path),
  kind,
  state: kind === 'deleted' ? null : sampleState(seq),
  detectedAt: new Date(Date.UTC(2026, 0, 2, 3, 4, 5, seq)),
  source: 'realtime',
});

for (const kind of testDatabaseKinds()) {
  describe(`alert outbox on ${kind.name}`, () => {
    let db: TestDatabase;
    let now = new Date('2026-02-01T00:00:00Z');
    const clock: Clock = () => now;
    let events: EventStore;
    let store: AlertStore;
    let n = 0;
    /** A new agent, and an ingest of its deltas where every path alerts under rule "watched". */
    const agentWith = async (deltas: FileDelta[]) => {
      const agentId = `outbox-${++n}`;
      await createAgentStore(db.sql, clock).create({ id: agentId, hostname: `web-${n}`, tokenId: 't', labels: {} });
      const res = await events.ingest(agentId, deltas, () => 'watched');
      return { agentId, hostname: `web-${n}`, res };
    };
    /** Alerts of this agent the outbox still holds, claimed as a sweep would (leases them). */
    const unsent = async (agentId: string) => (await store.claimPending(new Date(now.getTime() + 1), 1, 1000)).filter((r) => r.agentId === agentId);

    before(async () => {
      db = await kind.open();
      events = createEventStore(db.sql, clock);
      store = createAlertStore(db.sql, clock);
    });
    after(async () => {
      await db.drop();
    });

    it('sends what an ingest committed, in order, assembled for the notifier, and marks each sent', async () => {
      const notifier = recordingNotifier();
      const outbox = createAlertOutbox({ notifier, store, logger, clock });
      const { agentId, hostname, res } = await agentWith([delta(1, '/srv/www/index.php'), delta(2, Buffer.from([0x2f, 0x74, 0xff]), 'deleted')]);
      outbox.committed({ hostname, alerts: res.alerts, stored: res.stored });
      await outbox.idle();
      assert.deepEqual(
        notifier.sent.map((a) => [a.agentId, a.hostname, a.rule, a.seq, a.kind, a.path, a.sha256]),
        [
          [agentId, hostname, 'watched', 1, 'modified', '/srv/www/index.php', Buffer.alloc(32, 1).toString('hex')],
          [agentId, hostname, 'watched', 2, 'deleted', '/t\\xff', null],
        ],
      );
      assert.deepEqual(notifier.sent.map((a) => a.detectedAt), [delta(1, '/').detectedAt, delta(2, '/').detectedAt]);
      assert.deepEqual(notifier.sent.map((a) => a.id), res.alerts.map((a) => a.id));
      assert.deepEqual(await unsent(agentId), [], 'marked notified');
    });

    it('a failed send stays in the outbox; the sweep sends the very alert the ingest would have', async () => {
      const notifier = recordingNotifier();
      notifier.down = true;
      const outbox = createAlertOutbox({ notifier, store, logger, clock });
      const { agentId, hostname, res } = await agentWith([delta(1, '/etc/shadow')]);
      outbox.committed({ hostname, alerts: res.alerts, stored: res.stored });
      await outbox.idle();
      assert.equal(notifier.attempts.length, 1);
      assert.equal(notifier.sent.length, 0);

      notifier.down = false;
      // Within the grace period the alert may still be in flight: the sweep leaves it alone.
      now = new Date(now.getTime() + SWEEP_GRACE_MS - 1000);
      await outbox.sweep();
      await outbox.idle();
      assert.equal(notifier.sent.filter((a) => a.agentId === agentId).length, 0);

      now = new Date(now.getTime() + 2000);
      assert.ok((await outbox.sweep()) >= 1);
      await outbox.idle();
      const swept = notifier.sent.filter((a) => a.agentId === agentId);
      // Assembled from the row read back, it is the alert assembled from the ingest's own deltas.
      assert.deepEqual(swept, [notifier.attempts[0]]);
      now = new Date(now.getTime() + 120_000);
      assert.deepEqual(await unsent(agentId), [], 'marked notified after the sweep');
    });

    it('a claimed alert is not handed to a second sweep while the claim lasts', async () => {
      const notifier = recordingNotifier();
      notifier.down = true;
      const outbox = createAlertOutbox({ notifier, store, logger, clock });
      const { agentId } = await agentWith([delta(1, '/etc/passwd')]);
      now = new Date(now.getTime() + SWEEP_GRACE_MS + 1000);
      await outbox.sweep();
      await outbox.idle();
      const mine = () => notifier.attempts.filter((a) => a.agentId === agentId).length;
      assert.equal(mine(), 1);
      await outbox.sweep();
      await outbox.idle();
      assert.equal(mine(), 1, 'leased to the first sweep');
      now = new Date(now.getTime() + 61_000);
      notifier.down = false;
      await outbox.sweep();
      await waitFor('the alert to be sent once the claim ran out', () => notifier.sent.some((a) => a.agentId === agentId), 5000, 5);
    });

    it('toAlert shows the path in display form and the digest in hex', () => {
      const alert = toAlert({ id: 7, agentId: 'a', hostname: '', rule: 'r', seq: 3, kind: 'created', path: Buffer.from('/x\n'), sha256: Buffer.from([0xab, 0x01]), detectedAt: new Date(0) });
      assert.equal(alert.path, '/x\\x0a');
      assert.equal(alert.sha256, 'ab01');
    });
  });
}
