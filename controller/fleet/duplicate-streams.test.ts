import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { recordingSession } from '../../test/support/agent-sessions.js';
import { testDatabaseKinds, type TestDatabase } from '../../test/support/databases.js';
import { createFanoutBus } from '../../test/support/fanout-bus.js';
import { waitFor } from '../../test/support/processes.js';
import type { Notifier, SecurityEvent } from '../alerts/notifier.js';
import { ControllerError } from '../errors.js';
import { createAuditStore, type AuditStore } from '../store/index.js';
import { createAgentHub } from './agent-hub.js';
import { createDuplicateStreams } from './duplicate-streams.js';

const logger = pino({ level: 'silent' });

for (const kind of testDatabaseKinds()) {
  describe(`duplicate streams on ${kind.name}`, () => {
    let db: TestDatabase;
    let audit: AuditStore;
    const replica = (bus: ReturnType<typeof createFanoutBus>) => {
      const security: SecurityEvent[] = [];
      const notifier: Notifier = { name: 'recording', notify: async () => undefined, security: async (e) => void security.push(e) };
      const fanout = bus.replica();
      const streams = createDuplicateStreams({ fanout, audit, notifier, logger });
      const hub = createAgentHub({ onDuplicate: streams.onDuplicate });
      streams.watch(hub);
      return { hub, streams, security };
    };
    const auditedFor = async (agentId: string) => (await audit.list({ limit: 1000 })).entries.filter((e) => e.target === agentId && e.action === 'security.duplicate_stream');
    before(async () => {
      db = await kind.open();
      audit = createAuditStore(db.sql, () => new Date());
    });
    after(async () => {
      await db.drop();
    });

    it('a second stream here closes the first and is reported (audit and a security notification)', async () => {
      const { hub, security } = replica(createFanoutBus());
      const older = recordingSession('dup-1', { remoteAddress: '192.0.2.1' });
      const newer = recordingSession('dup-1', { remoteAddress: '203.0.113.9' });
      hub.attach(older);
      hub.attach(newer);
      assert.ok(older.closedWith instanceof ControllerError && older.closedWith.code === 'unavailable');
      assert.equal(newer.closedWith, null);
      assert.deepEqual(security.map((e) => [e.kind, e.agentId]), [['duplicate_stream', 'dup-1']]);
      assert.match(security[0]!.text, /from 203\.0\.113\.9\) while one was open \(from 192\.0\.2\.1\)/);
      const entries = await waitFor('the audit entry', async () => (await auditedFor('dup-1')).length > 0 && auditedFor('dup-1'), 5000, 5);
      assert.deepEqual(entries.map((e) => e.details), [{ olderRemote: '192.0.2.1', newerRemote: '203.0.113.9' }]);
    });

    it('streams announced while a notification is on its way go round together, and each is judged', async () => {
      const published: number[] = [];
      const bus = createFanoutBus();
      const here = replica(bus);
      const thereFanout = bus.replica();
      const counting = { ...thereFanout, publish: async (e: Parameters<typeof thereFanout.publish>[0]) => {
        if (e.type === 'streams') published.push(e.streams.length);
        await new Promise((r) => setTimeout(r, 5));
        return thereFanout.publish(e);
      } };
      const there = createDuplicateStreams({ fanout: counting, audit, notifier: { name: 'n', notify: async () => undefined, security: async () => undefined }, logger });
      const locals = Array.from({ length: 100 }, (_, i) => recordingSession(`storm-${i}`));
      for (const l of locals) here.hub.attach(l);
      for (let i = 0; i < 100; i++) there.announce(recordingSession(`storm-${i}`));
      await waitFor('every older stream here to be closed', () => locals.every((l) => l.closedWith) || undefined, 5000, 5);
      assert.equal(published.reduce((a, b) => a + b, 0), 100, 'every stream announced once');
      assert.ok(published.length <= 4, `${published.length} notifications for 100 streams`);
      assert.ok(published.every((n) => n <= 40), 'each notification stays well under the NOTIFY payload limit');
    });

    it('a stream announced by another replica closes this one; its own announcement does not', async () => {
      const bus = createFanoutBus();
      const here = replica(bus);
      const there = replica(bus);
      const local = recordingSession('dup-2');
      here.hub.attach(local);
      here.streams.announce(local);
      // The first announcement has gone round (the bus delivers on the next turn) before the second stream opens.
      await new Promise((r) => setImmediate(r));
      const remote = recordingSession('dup-2', { remoteAddress: '198.51.100.7' });
      there.hub.attach(remote);
      there.streams.announce(remote);
      await waitFor('the older stream to be closed', () => local.closedWith ?? undefined, 5000, 5);
      assert.ok(local.closedWith instanceof ControllerError && /on another controller/.test(local.closedWith.message));
      assert.equal(remote.closedWith, null, 'its own announcement, and the older one, leave the newer stream open');
      assert.deepEqual(here.security.map((e) => e.agentId), ['dup-2']);
      assert.deepEqual(there.security, []);
    });
  });
}
