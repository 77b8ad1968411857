import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { recordingSession } from '../../test/support/agent-sessions.js';
import { testDatabaseKinds, type TestDatabase } from '../../test/support/databases.js';
import { createFanoutBus } from '../../test/support/fanout-bus.js';
import { waitFor } from '../../test/support/processes.js';
import { agentRevokedError, ControllerError } from '../errors.js';
import { createAgentStore, type AgentStore } from '../store/index.js';
import { createAgentHub } from './agent-hub.js';
import { createRevocations } from './revocations.js';

const logger = pino({ level: 'silent' });
const isRevoked = (agentId: string, reason?: string) => (err: Error | null) =>
  err instanceof ControllerError && err.code === 'permission_denied' && err.message === agentRevokedError(agentId, reason).message;

for (const kind of testDatabaseKinds()) {
  describe(`revocations on ${kind.name}`, () => {
    let db: TestDatabase;
    let agents: AgentStore;
    let n = 0;
    const enrolled = async () => {
      const id = `agent-${++n}`;
      await agents.create({ id, hostname: `host-${n}`, tokenId: 't', labels: {} });
      return id;
    };
    /** Two replicas on one database and one fan-out, each with its own hub. */
    let now = Date.parse('2026-06-01T00:00:00Z');
    const twoReplicas = () => {
      const bus = createFanoutBus();
      return [0, 1].map(() => {
        const fanout = bus.replica();
        const hub = createAgentHub({ onDuplicate: () => undefined });
        return { fanout, hub, revocations: createRevocations({ agents, hub, fanout, logger, clock: () => new Date(now) }) };
      });
    };
    before(async () => {
      db = await kind.open();
      agents = createAgentStore(db.sql, () => new Date());
    });
    after(async () => {
      await db.drop();
    });

    it('says the agent was revoked, why when known, and how to come back', () => {
      assert.equal(agentRevokedError('a1', 'laptop stolen').message, 'agent a1 was revoked: laptop stolen; enrol it again');
      assert.equal(agentRevokedError('a1').message, 'agent a1 was revoked; enrol it again');
      assert.equal(agentRevokedError('a1', null).code, 'permission_denied');
    });

    it('revoking records it, cuts the stream here at once and on the other replica through the fan-out', async () => {
      const [here, there] = twoReplicas();
      const id = await enrolled();
      const local = recordingSession(id);
      const remote = recordingSession(id);
      const bystander = recordingSession(await enrolled());
      here!.hub.attach(local);
      here!.hub.attach(bystander);
      there!.hub.attach(remote);

      const { reason } = await here!.revocations.revoke(id, 'key leaked');
      assert.equal(reason, 'key leaked');
      assert.ok(isRevoked(id, 'key leaked')(local.closedWith), 'cut here before revoke() returned');
      assert.ok((await agents.get(id))?.revokedAt);
      await waitFor('the other replica to cut its stream', () => remote.closedWith ?? undefined, 5000, 5);
      assert.ok(isRevoked(id, 'key leaked')(remote.closedWith));
      assert.equal(bystander.closedWith, null);
    });

    it('an empty reason is recorded as the default one, a long one is cut', async () => {
      const [here] = twoReplicas();
      assert.equal((await here!.revocations.revoke(await enrolled(), '')).reason, 'revoked by an operator');
      const long = 'x'.repeat(600);
      const id = await enrolled();
      assert.equal((await here!.revocations.revoke(id, long)).reason, long.slice(0, 500));
      assert.equal((await agents.get(id))?.revokeReason, long.slice(0, 500));
    });

    it('refuses an unknown agent (not_found) and one revoked already (failed_precondition)', async () => {
      const [here] = twoReplicas();
      await assert.rejects(here!.revocations.revoke('no-such-agent', 'r'), (e: unknown) => e instanceof ControllerError && e.code === 'not_found');
      const id = await enrolled();
      await here!.revocations.revoke(id, 'r');
      await assert.rejects(here!.revocations.revoke(id, 'again'), (e: unknown) => e instanceof ControllerError && e.code === 'failed_precondition');
    });

    it('the sweep cuts revoked agents connected here whose fan-out event never came', async () => {
      const [here] = twoReplicas();
      const revokedId = await enrolled();
      const keptId = await enrolled();
      const revoked = recordingSession(revokedId);
      const kept = recordingSession(keptId);
      here!.hub.attach(revoked);
      here!.hub.attach(kept);
      // Revoked behind this replica's back: straight in the database, nothing published.
      await agents.revoke(revokedId, 'elsewhere');
      assert.equal(await here!.revocations.sweep(), 1);
      assert.ok(isRevoked(revokedId)(revoked.closedWith));
      assert.equal(kept.closedWith, null);
    });

    it('a revocation heard here is remembered for ten minutes, for a stream attached after its check', async () => {
      const [here, there] = twoReplicas();
      const id = await enrolled();
      const other = await enrolled();
      assert.equal(there!.revocations.revokedRecently(id), false);
      await here!.revocations.revoke(id, 'r');
      assert.equal(here!.revocations.revokedRecently(id), true, 'on the replica that revoked');
      await waitFor('the other replica to hear it', () => there!.revocations.revokedRecently(id) || undefined, 5000, 5);
      assert.equal(there!.revocations.revokedRecently(other), false);
      now += 10 * 60_000 + 1;
      await here!.revocations.revoke(other, 'r');
      assert.equal(here!.revocations.revokedRecently(id), false, 'forgotten after ten minutes: the database says it by then');
      assert.equal(here!.revocations.revokedRecently(other), true);
    });

    it('a re-established fan-out connection sweeps at once', async () => {
      const [here] = twoReplicas();
      const id = await enrolled();
      const s = recordingSession(id);
      here!.hub.attach(s);
      await agents.revoke(id, 'while the fan-out was down');
      here!.fanout.resync();
      await waitFor('the resync sweep to cut the stream', () => s.closedWith ?? undefined, 5000, 5);
      assert.ok(isRevoked(id)(s.closedWith));
    });
  });
}
