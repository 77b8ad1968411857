import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { testDatabaseKinds, type TestDatabase } from '../../test/support/databases.js';
import { createAgentStore, createPresenceStore, type AgentStore } from '../store/index.js';
import { createPresence, isLive, PRESENCE_STALE_MS } from './presence.js';

const logger = pino({ level: 'silent' });

for (const kind of testDatabaseKinds()) {
  describe(`presence on ${kind.name}`, () => {
    let db: TestDatabase;
    let agents: AgentStore;
    let now = new Date('2026-06-01T00:00:00Z');
    const clock = () => now;
    const replica = (id: string) => createPresence({ store: createPresenceStore(db.sql), replica: { id, name: `host ${id}` }, clock, logger, flushMs: 3_600_000 });
    before(async () => {
      db = await kind.open();
      agents = createAgentStore(db.sql, clock);
      for (const id of ['p-1', 'p-2', 'p-3']) await agents.create({ id, hostname: 'enrolled-name', tokenId: 't', labels: {} });
    });
    after(async () => {
      await db.drop();
    });

    it('streams and hellos are written in one flush: replica, last seen, hostname, policy version', async () => {
      const r1 = replica('r1');
      r1.connected('p-1', 's-1');
      r1.seen('p-1', { hostname: 'web-1', policyVersion: 4 });
      r1.connected('p-2', 's-2');
      assert.equal((await agents.get('p-1'))?.connection, null, 'nothing written before the flush');
      await r1.flush();
      const p1 = (await agents.get('p-1'))!;
      assert.equal(p1.connection?.replicaName, 'host r1');
      assert.ok(isLive(p1.connection, now));
      assert.equal(p1.hostname, 'web-1');
      assert.equal(p1.policyVersion, 4);
      assert.deepEqual(p1.lastSeenAt, now);
      assert.equal((await agents.get('p-2'))?.hostname, 'enrolled-name', 'a stream without a hello keeps the enrolled name');
      r1.disconnected('p-2', 's-2');
      await r1.flush();
      assert.equal((await agents.get('p-2'))?.connection, null);
      await r1.stop();
    });

    it('a stale close does not disconnect a newer stream, on this replica or another', async () => {
      const r1 = replica('r1b');
      const r2 = replica('r2b');
      r1.connected('p-3', 'old');
      await r1.flush();
      r2.connected('p-3', 'new');
      await r2.flush();
      r1.disconnected('p-3', 'old');
      await r1.flush();
      assert.equal((await agents.get('p-3'))?.connection?.replicaName, 'host r2b', 'the newer stream still holds it');
      await r1.stop();
      assert.equal((await agents.get('p-3'))?.connection?.replicaName, 'host r2b', 'retiring r1 leaves r2\'s streams');
      await r2.stop();
      assert.equal((await agents.get('p-3'))?.connection, null, 'a replica stopping cleanly releases its streams');
    });

    it('a replica that stopped heartbeating holds no streams', async () => {
      const r = replica('r-dead');
      r.connected('p-1', 's-9');
      await r.flush();
      const conn = (await agents.get('p-1'))!.connection;
      assert.ok(isLive(conn, now));
      assert.equal(isLive(conn, new Date(now.getTime() + PRESENCE_STALE_MS + 1)), false);
      await r.stop();
    });
  });
}
