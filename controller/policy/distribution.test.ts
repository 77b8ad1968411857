import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { DEFAULT_LIMITS, defineRule } from '../../core/policy-schema.js';
import { recordingSession, type RecordingSession } from '../../test/support/agent-sessions.js';
import { testDatabaseKinds, type TestDatabase } from '../../test/support/databases.js';
import { createFanoutBus } from '../../test/support/fanout-bus.js';
import { waitFor } from '../../test/support/processes.js';
import { createAgentHub } from '../fleet/agent-hub.js';
import { createPolicyStore, type PolicyStore } from '../store/index.js';
import { loadCurrentPolicy } from './current-policy.js';
import { createPolicyDistribution } from './distribution.js';

const logger = pino({ level: 'silent' });
const webAndAll = {
  limits: DEFAULT_LIMITS,
  rules: [defineRule({ name: 'web', paths: ['/srv/www'], selector: { role: 'web' } }), defineRule({ name: 'etc', paths: ['/etc'] })],
};
/** Rule names of the policies a session was sent, with their versions. */
const received = (s: RecordingSession) => s.sent.map((m) => (m.type === 'policy' ? `v${m.policy.version}:${m.policy.rules.map((r) => r.name).join(',')}` : m.type));

for (const kind of testDatabaseKinds()) {
  describe(`policy distribution on ${kind.name}`, () => {
    let db: TestDatabase;
    let store: PolicyStore;
    const replicas = (count: number) => {
      const bus = createFanoutBus();
      return Promise.all(
        Array.from({ length: count }, async () => {
          const fanout = bus.replica();
          const hub = createAgentHub({ onDuplicate: () => undefined });
          // Counts this replica's reads of the current version (a refresh reads it first thing).
          const reads = { n: 0 };
          const counted: PolicyStore = { ...store, current: () => (reads.n++, store.current()) };
          const current = await loadCurrentPolicy(counted);
          return { fanout, hub, current, reads, distribution: createPolicyDistribution({ current, store: counted, hub, fanout, logger }) };
        }),
      ).then((list) => ({ bus, list }));
    };
    before(async () => {
      db = await kind.open();
      store = createPolicyStore(db.sql, () => new Date());
    });
    after(async () => {
      await db.drop();
    });

    it('apply stores the next version and sends each agent connected here the rules its labels select', async () => {
      const { bus, list } = await replicas(1);
      const { hub, current, distribution } = list[0]!;
      const web = recordingSession('w', { labels: { role: 'web' } });
      const db1 = recordingSession('d', { labels: { role: 'db' } });
      hub.attach(web);
      hub.attach(db1);
      const before = (await store.current())?.version ?? 0;
      const { policy, pushedTo } = await distribution.apply(webAndAll, 'spiffe://t/admin/a');
      assert.equal(policy.version, before + 1);
      assert.equal(pushedTo, 2);
      assert.equal(current.get()?.version, policy.version);
      assert.deepEqual(received(web), [`v${policy.version}:web,etc`]);
      assert.deepEqual(received(db1), [`v${policy.version}:etc`]);
      assert.deepEqual(bus.published.map((p) => p.event), [{ type: 'policy', version: policy.version }]);
    });

    it('a closed stream is not counted as pushed', async () => {
      const { list } = await replicas(1);
      const open = recordingSession('o');
      const closed = recordingSession('c');
      closed.close(new Error('gone'));
      list[0]!.hub.attach(open);
      list[0]!.hub.attach(closed);
      assert.equal((await list[0]!.distribution.apply(webAndAll, 'a')).pushedTo, 1);
    });

    it('the other replicas re-read the new version and send it to their agents; the applying one sends once', async () => {
      const { list } = await replicas(2);
      const [here, there] = list;
      const local = recordingSession('l', { labels: { role: 'web' } });
      const remote = recordingSession('r', { labels: { role: 'web' } });
      here!.hub.attach(local);
      there!.hub.attach(remote);
      const readsBefore = here!.reads.n;
      const { policy } = await here!.distribution.apply(webAndAll, 'a');
      await waitFor('the other replica to push', () => remote.sent.length > 0, 5000, 5);
      assert.deepEqual(received(remote), [`v${policy.version}:web,etc`]);
      assert.equal(there!.current.get()?.version, policy.version);
      // The event reached the applying replica in the same delivery: it neither re-read nor pushed again.
      assert.equal(here!.reads.n, readsBefore);
      assert.deepEqual(received(local), [`v${policy.version}:web,etc`]);
    });

    it('after a fan-out outage a replica re-reads the current version and sends it again', async () => {
      const { list } = await replicas(1);
      const { fanout, hub, current, distribution } = list[0]!;
      const s = recordingSession('s');
      hub.attach(s);
      // Applied by a replica this one never heard from: straight into the store.
      const missed = await store.apply(webAndAll, 'elsewhere');
      assert.notEqual(current.get()?.version, missed.version);
      fanout.resync();
      await waitFor('the resync push', () => s.sent.length > 0, 5000, 5);
      assert.deepEqual(received(s), [`v${missed.version}:etc`]);
      assert.equal(await distribution.refresh(), 1);
    });
  });
}
