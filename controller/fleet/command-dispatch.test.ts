import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { recordingSession, type RecordingSession } from '../../test/support/agent-sessions.js';
import { testDatabaseKinds, type TestDatabase } from '../../test/support/databases.js';
import { createFanoutBus } from '../../test/support/fanout-bus.js';
import { waitFor } from '../../test/support/processes.js';
import { createAgentStore, createCommandStore, type AgentStore, type CommandStore } from '../store/index.js';
import { createAgentHub } from './agent-hub.js';
import { createCommandDispatch } from './command-dispatch.js';

const logger = pino({ level: 'silent' });
const HOUR = 3_600_000;
/** The command ids a session was sent. */
const commandsOf = (s: RecordingSession) => s.sent.flatMap((m) => (m.type === 'command' ? [m.command.id] : []));

for (const kind of testDatabaseKinds()) {
  describe(`command dispatch on ${kind.name}`, () => {
    let db: TestDatabase;
    let agents: AgentStore;
    let commands: CommandStore;
    let skew = 0;
    const clock = () => new Date(Date.now() + skew);
    let n = 0;
    const enrolled = async () => {
      const id = `agent-${String(++n).padStart(3, '0')}`;
      await agents.create({ id, hostname: `host-${n}`, tokenId: 't', labels: {} });
      return id;
    };
    /** Replicas on one database and one fan-out, each with its own hub and dispatch. */
    const replicas = (count: number, opts: { expiryMs?: number } = {}) => {
      const bus = createFanoutBus();
      const list = Array.from({ length: count }, () => {
        const fanout = bus.replica();
        const hub = createAgentHub({ onDuplicate: () => undefined });
        return { fanout, hub, dispatch: createCommandDispatch({ commands, hub, fanout, clock, logger, expiryMs: opts.expiryMs ?? 24 * HOUR }) };
      });
      return { bus, list };
    };
    const stateOf = async (commandId: string) => (await commands.get([commandId]))[0]?.state;

    before(async () => {
      db = await kind.open();
      agents = createAgentStore(db.sql, clock);
      commands = createCommandStore(db.sql, clock);
    });
    after(async () => {
      await db.drop();
    });

    it('sends a group to every agent connected here at once and marks it delivered; the others stay pending', async () => {
      const { bus, list } = replicas(1);
      const { hub, dispatch } = list[0]!;
      const here = await Promise.all([1, 2, 3].map(() => enrolled()));
      const away = await enrolled();
      const sessions = here.map((id) => recordingSession(id));
      for (const s of sessions) hub.attach(s);
      const sent = await dispatch.send({ kind: 'rescan', fullHash: true, targets: { agentIds: [...here, away] }, createdBy: 'op' });
      assert.deepEqual(sent.targets.map((t) => [t.agentId, t.delivered]), [...here.map((id) => [id, true]), [away, false]]);
      for (const [i, s] of sessions.entries()) {
        assert.deepEqual(s.sent, [{ type: 'command', command: { id: sent.targets[i]!.commandId, kind: 'rescan', fullHash: true } }]);
      }
      assert.deepEqual((await commands.group(sent.groupId))?.counts, { pending: 1, delivered: 3, done: 0, failed: 0, expired: 0 });
      assert.equal(sent.expiresAt.getTime() - Date.now() > 23 * HOUR, true, 'the default expiry');
      assert.deepEqual(bus.published.map((p) => p.event.type), ['commands'], 'the other replicas are told: one is pending');
    });

    it('a command for an agent connected to another replica reaches it through the fan-out', async () => {
      const { list } = replicas(2);
      const [a, b] = list;
      const id = await enrolled();
      const remote = recordingSession(id);
      b!.hub.attach(remote);
      const sent = await a!.dispatch.send({ kind: 'rescan', fullHash: false, targets: { agentIds: [id] }, createdBy: 'op' });
      assert.equal(sent.targets[0]!.delivered, false, 'not connected to the replica that took it');
      await waitFor('the other replica to deliver it', () => commandsOf(remote).length > 0 || undefined, 5000, 5);
      assert.deepEqual(commandsOf(remote), [sent.targets[0]!.commandId]);
      assert.equal(await stateOf(sent.targets[0]!.commandId), 'delivered');
    });

    it('every-agent reaches the agents of both replicas once each and queues the rest', async () => {
      const { list } = replicas(2);
      const [a, b] = list;
      const onA = recordingSession(await enrolled());
      const onB = recordingSession(await enrolled());
      const offline = await enrolled();
      a!.hub.attach(onA);
      b!.hub.attach(onB);
      // every-agent needs a live certificate: give one to these three (others in this database have none).
      for (const agentId of [onA.agentId, onB.agentId, offline]) {
        await db.sql.query(`insert into certificates (serial, agent_id, subject, key_fingerprint, not_before, not_after, issued_at) values ($1, $2, 's', 'k', $3, $4, $3)`, [
          `serial-${agentId}`,
          agentId,
          new Date(),
          new Date(Date.now() + HOUR),
        ]);
      }
      const sent = await a!.dispatch.send({ kind: 'rescan', fullHash: false, targets: 'every-agent', createdBy: 'op' });
      assert.deepEqual(sent.targets.map((t) => t.agentId), [onA.agentId, onB.agentId, offline]);
      await waitFor('the other replica to deliver', () => commandsOf(onB).length > 0 || undefined, 5000, 5);
      assert.equal(commandsOf(onA).length, 1);
      assert.equal(commandsOf(onB).length, 1);
      assert.deepEqual((await commands.group(sent.groupId))?.counts, { pending: 1, delivered: 2, done: 0, failed: 0, expired: 0 });
    });

    it('a command for an offline agent is queued and delivered once when the agent connects, on any replica', async () => {
      const { list } = replicas(2);
      const [a, b] = list;
      const id = await enrolled();
      const sent = await a!.dispatch.send({ kind: 'rescan', fullHash: false, targets: { agentIds: [id] }, createdBy: 'op' });
      const commandId = sent.targets[0]!.commandId;
      await new Promise((r) => setImmediate(r)); // the fan-out event has been handled: nobody took it
      assert.equal(await stateOf(commandId), 'pending');
      const later = recordingSession(id);
      b!.hub.attach(later);
      assert.equal(await b!.dispatch.deliverPending(later), 1);
      assert.deepEqual(commandsOf(later), [commandId]);
      assert.equal(await stateOf(commandId), 'delivered');
      const again = recordingSession(id);
      a!.hub.attach(again);
      assert.equal(await a!.dispatch.deliverPending(again), 0, 'delivered once');
      assert.deepEqual(again.sent, []);
    });

    it('an expired command is not delivered, and the sweep marks it expired', async () => {
      const { list } = replicas(1, { expiryMs: 60_000 });
      const { hub, dispatch } = list[0]!;
      const id = await enrolled();
      const sent = await dispatch.send({ kind: 'rescan', fullHash: false, targets: { agentIds: [id] }, createdBy: 'op' });
      const commandId = sent.targets[0]!.commandId;
      skew = 61_000;
      try {
        const s = recordingSession(id);
        hub.attach(s);
        assert.equal(await dispatch.deliverPending(s), 0);
        assert.deepEqual(s.sent, []);
        assert.equal(await stateOf(commandId), 'expired', 'as of the read');
        const swept = await dispatch.sweep();
        assert.ok(swept.expired >= 1);
        assert.equal((await db.sql.query<{ state: string }>('select state from commands where id = $1', [commandId]))[0]?.state, 'expired', 'stored');
      } finally {
        skew = 0;
      }
    });

    it("a revoked agent's queued command is never delivered; the sweep marks it failed", async () => {
      const { list } = replicas(1);
      const { hub, dispatch } = list[0]!;
      const id = await enrolled();
      const sent = await dispatch.send({ kind: 'rescan', fullHash: false, targets: { agentIds: [id] }, createdBy: 'op' });
      await agents.revoke(id, 'stolen');
      // Its stream is refused at connect; even a session that got as far as the hub gets nothing.
      const s = recordingSession(id);
      hub.attach(s);
      assert.equal(await dispatch.deliverPending(s), 0);
      await dispatch.sweep();
      assert.deepEqual(s.sent, []);
      const [c] = await commands.get([sent.targets[0]!.commandId]);
      assert.equal(c?.state, 'failed');
      assert.match(c?.failure ?? '', /revoked/);
    });

    it('a command handed to a stream that had closed goes back to pending and reaches the next stream', async () => {
      const { list } = replicas(1);
      const { hub, dispatch } = list[0]!;
      const id = await enrolled();
      const closing = recordingSession(id);
      hub.attach(closing);
      closing.close(new Error('gone'));
      const sent = await dispatch.send({ kind: 'rescan', fullHash: false, targets: { agentIds: [id] }, createdBy: 'op' });
      assert.equal(sent.targets[0]!.delivered, false);
      assert.equal(await stateOf(sent.targets[0]!.commandId), 'pending');
      const next = recordingSession(id);
      hub.attach(next);
      assert.equal(await dispatch.deliverPending(next), 1);
    });

    it('after a fan-out outage (resync) a replica claims what is pending for its agents', async () => {
      const { list } = replicas(1);
      const id = await enrolled();
      const sent = await list[0]!.dispatch.send({ kind: 'rescan', fullHash: false, targets: { agentIds: [id] }, createdBy: 'op' });
      // A replica on another bus: it never hears of the group.
      const deaf = replicas(1).list[0]!;
      const s = recordingSession(id);
      deaf.hub.attach(s);
      deaf.fanout.resync();
      await waitFor('the resync to deliver it', () => commandsOf(s).length > 0 || undefined, 5000, 5);
      assert.deepEqual(commandsOf(s), [sent.targets[0]!.commandId]);
    });

    it('a stream attaching when nothing is pending anywhere costs no query', async () => {
      // Everything pending so far is expired or claimed after this sweep.
      skew = 25 * HOUR;
      const { list } = replicas(1);
      const counted = { n: 0 };
      const store: CommandStore = { ...commands, claimPending: (...args) => (counted.n++, commands.claimPending(...args)) };
      const hub = createAgentHub({ onDuplicate: () => undefined });
      const dispatch = createCommandDispatch({ commands: store, hub, fanout: list[0]!.fanout, clock, logger, expiryMs: HOUR });
      try {
        await dispatch.sweep();
        counted.n = 0;
        const id = await enrolled();
        const s = recordingSession(id);
        hub.attach(s);
        assert.equal(await dispatch.deliverPending(s), 0);
        assert.equal(counted.n, 0, 'no claim query');
        await dispatch.send({ kind: 'rescan', fullHash: false, targets: { agentIds: [await enrolled()] }, createdBy: 'op' });
        assert.equal(await dispatch.deliverPending(recordingSession(id)), 0);
        assert.equal(counted.n, 1, 'once something is pending, a new stream looks');
      } finally {
        skew = 0;
      }
    });
  });
}
