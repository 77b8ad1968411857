/**
 * The two halves of the agent stream against each other, in one process: the agent's stream
 * session (agent/session, with a real LMDB store and a scripted router instead of a monitor) and
 * the controller's stream service (a real controller on port 0, PGlite or DATABASE_URL).
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { DEFAULT_LIMITS, defineRule } from '../../core/policy-defaults.js';
import type { Policy } from '../../core/model.js';
import { AGENT_DEFAULTS } from '../../agent/config.js';
import { loadCredentials } from '../../agent/credentials.js';
import { AgentError } from '../../agent/errors.js';
import { runStreamSession, type SessionRouter } from '../../agent/session/stream-session.js';
import { stateDir } from '../../agent/state-dir.js';
import type { Change } from '../../agent/store/journal.js';
import { openLocalStore, type LocalStore } from '../../agent/store/local-store.js';
import { createAgentClient } from '../../agent/transport/agent-client.js';
import type { AgentCommand } from '../../agent/transport/stream-messages.js';
import type { ScanReport } from '../../core/scan-summary.js';
import { policyToPb } from '../../proto/convert.js';
import { enrolTestAgent, makeHome, startTestController, tempRoot, testDatabaseEnv, type TestController } from '../support/controllers.js';
import { waitFor } from '../support/processes.js';
import { sampleState } from '../support/file-states.js';

const silent = pino({ level: 'silent' });

/** A router that records what came down and answers as the monitor would. */
function scriptedRouter(store: LocalStore) {
  const events = new EventEmitter();
  const policies: Policy[] = [];
  const commands: { id: string; command: AgentCommand }[] = [];
  let caughtUp = 0;
  /** Set: the next commands fail with this message, as a monitor's rescan that throws. */
  const failing = { message: '' };
  const report = (commandId: string, policyVersion: number): ScanReport => ({ commandId: commandId || null, policyVersion, summary: { filesScanned: 7, changes: 1, errors: 0, startedAt: new Date(), finishedAt: new Date() } });
  const router: SessionRouter = {
    async policy(p) {
      policies.push(p);
      return report('', p.version);
    },
    async command(id, command) {
      commands.push({ id, command });
      if (failing.message) throw new Error(failing.message);
      return report(id, policies.at(-1)?.version ?? 0);
    },
    currentPolicy: () => policies.at(-1) ?? null,
    async recordRepairs(repairs) {
      const changes = repairs();
      store.journal.record(changes);
      events.emit('queued');
      return changes.length;
    },
    catchUp: () => void caughtUp++,
    scheduledOnly: () => [],
    watch(onQueued, onStatus) {
      events.on('queued', onQueued);
      events.on('status', onStatus);
      return () => {
        events.off('queued', onQueued);
        events.off('status', onStatus);
      };
    },
  };
  return { router, policies, commands, failing, caughtUp: () => caughtUp, queued: () => events.emit('queued') };
}

const change = (path: string, n: number, kind: Change['kind'] = 'created'): Change => ({ path: Buffer.from(path), kind, state: sampleState(n), source: 'realtime', detectedAt: new Date() });

describe('agent stream session ⇄ controller stream service', () => {
  const tmp = tempRoot('vigil-proto-');
  let db: Awaited<ReturnType<typeof testDatabaseEnv>>;
  let ctl: TestController;
  before(async () => {
    db = await testDatabaseEnv();
    ctl = await startTestController(await makeHome(tmp.root, 'home'), { env: db.env });
  });
  after(async () => {
    await ctl.stop();
    await db.drop();
    tmp.remove();
  });

  /** An enrolled agent's store and a session on it; `end()` cancels the session and closes both. */
  async function session(name: string, prepare?: (store: LocalStore) => void) {
    const { dir, id } = await enrolTestAgent(ctl, `${tmp.root}/${name}`);
    const sd = stateDir(dir);
    const store = openLocalStore(sd.db);
    prepare?.(store);
    const scripted = scriptedRouter(store);
    const credentials = await loadCredentials(sd, new Date());
    const client = createAgentClient({ address: ctl.controller.address, caPem: credentials.caPem, certPem: credentials.certPem, keyPem: credentials.keyPem });
    const s = runStreamSession({
      ...AGENT_DEFAULTS.stream,
      client,
      credentials,
      store,
      router: scripted.router,
      hostname: name,
      agentVersion: 'test',
      saveRenewed: async () => undefined,
      onRenewed: () => undefined,
      clock: () => new Date(),
      logger: silent,
    });
    const outcome = s.done.then(
      () => null,
      (err: unknown) => err,
    );
    return {
      id,
      store,
      ...scripted,
      outcome,
      async end() {
        s.cancel();
        await outcome;
        client.close();
        await store.close();
      },
    };
  }

  it('delivers the queue in order after the welcome, and the acks empty it', async () => {
    const a = await session('deliver', (store) => store.journal.record([change('/srv/a', 1), change('/srv/b', 2)]));
    try {
      a.store.journal.record([change('/srv/a', 3, 'modified')]);
      a.queued();
      await waitFor('the queue delivered', () => a.store.outbox.length() === 0);
      const events = (await ctl.admin.listEvents({ agentId: a.id })).events;
      assert.deepEqual(events.map((e) => [Number(e.delta!.seq), Buffer.from(e.delta!.path).toString(), e.delta!.kind]), [
        [1, '/srv/a', 1],
        [2, '/srv/b', 1],
        [3, '/srv/a', 2],
      ]);
    } finally {
      await a.end();
    }
  });

  it('hands a policy down to the router, and its scan report reaches the agent record', async () => {
    const a = await session('policy');
    try {
      const rules = [defineRule({ name: 'srv', paths: ['/srv'] })];
      const applied = await ctl.admin.applyPolicy({ policy: policyToPb({ version: 0, limits: DEFAULT_LIMITS, rules }) });
      await waitFor('the policy routed', () => a.policies.some((p) => p.version === Number(applied.version)));
      await waitFor('the report recorded', async () => Number((await ctl.admin.getAgent({ agentId: a.id })).agent?.policyVersion) === Number(applied.version));
    } finally {
      await a.end();
    }
  });

  it('routes a rescan command and records its result', async () => {
    const a = await session('rescan');
    try {
      await waitFor('connected', async () => (await ctl.admin.getAgent({ agentId: a.id })).agent?.connected);
      const { targets } = await ctl.admin.rescan({ agentId: a.id, fullHash: true });
      const commandId = targets[0]!.commandId;
      await waitFor('the command routed', () => a.commands.find((c) => c.id === commandId));
      assert.deepEqual(a.commands.find((c) => c.id === commandId)!.command, { kind: 'rescan', fullHash: true });
      const done = await waitFor('the result stored', async () => (await ctl.admin.getCommands({ ids: [commandId] })).commands.find((c) => c.completedAt));
      assert.equal(Number(done.scan?.filesScanned), 7);
    } finally {
      await a.end();
    }
  });

  it('a command that fails on the agent is reported failed with its reason, not left waiting', async () => {
    const a = await session('rescan-fails');
    try {
      a.failing.message = 'the baseline is locked';
      await waitFor('connected', async () => (await ctl.admin.getAgent({ agentId: a.id })).agent?.connected);
      const { targets } = await ctl.admin.rescan({ agentId: a.id, fullHash: false });
      const failed = await waitFor('the failure stored', async () => (await ctl.admin.getCommands({ ids: [targets[0]!.commandId] })).commands.find((c) => c.state === 'failed'));
      assert.equal(failed.failure, 'the baseline is locked');
    } finally {
      await a.end();
    }
  });

  it('reconciles on connect: what the controller lacks is repaired through the router', async () => {
    // Baseline entries recorded without queueing (as a scan the controller never heard of).
    const a = await session('reconcile', (store) => store.journal.record([change('/srv/only-here', 5)], { queue: false }));
    try {
      await waitFor('the repair stored', async () => (await ctl.admin.listFiles({ agentId: a.id })).files.some((f) => Buffer.from(f.path).toString() === '/srv/only-here'));
      assert.ok(a.store.meta.lastReconcile(), 'the reconcile stamp is kept');
    } finally {
      await a.end();
    }
  });

  it('delivers a 4,095-byte path whole, and reconciles a baseline holding paths longer than LMDB keys', async () => {
    // Directories of 120-byte names, as a deep tree has them (PATH_MAX is 4,096 with the NUL).
    const deepPath = (letter: string, bytes: number) => Buffer.from(`/srv${Array.from({ length: 40 }, (_, i) => `/${String(i).padStart(2, '0')}${letter.repeat(117)}`).join('')}`.slice(0, bytes));
    const queued = deepPath('q', 4095);
    const unqueued = deepPath('u', 2500);
    assert.equal(queued.length, 4095);
    const a = await session('long-paths', (store) => {
      store.journal.record([{ ...change('', 1), path: queued }]);
      store.journal.record([{ ...change('', 2), path: unqueued }], { queue: false });
    });
    try {
      const stored = async () => (await ctl.admin.listFiles({ agentId: a.id })).files.map((f) => Buffer.from(f.path));
      await waitFor('both stored', async () => (await stored()).some((p) => p.equals(unqueued)) && a.store.outbox.length() === 0);
      assert.ok((await stored()).some((p) => p.equals(queued)), 'the 4,095-byte path, every byte');
      const events = (await ctl.admin.listEvents({ agentId: a.id })).events;
      assert.ok(events.some((e) => Buffer.from(e.delta!.path).equals(queued)));
    } finally {
      await a.end();
    }
  });

  it('renumbers a queue that is behind the controller and asks the agent to catch up', async () => {
    const a = await session('restored');
    await waitFor('welcomed', async () => (await ctl.admin.getAgent({ agentId: a.id })).agent?.connected);
    a.store.journal.record([change('/srv/x', 1), change('/srv/y', 2)]);
    a.queued();
    await waitFor('delivered', () => a.store.outbox.length() === 0);
    await a.end();
    // The local store rolled back: a fresh one, whose numbering starts at 1 again.
    const again = await (async () => {
      const sd = stateDir(`${tmp.root}/restored`);
      const { rmSync } = await import('node:fs');
      rmSync(sd.db, { recursive: true, force: true });
      return sd;
    })();
    const store = openLocalStore(again.db);
    store.journal.record([change('/srv/z', 3)]);
    const scripted = scriptedRouter(store);
    const credentials = await loadCredentials(again, new Date());
    const client = createAgentClient({ address: ctl.controller.address, caPem: credentials.caPem, certPem: credentials.certPem, keyPem: credentials.keyPem });
    const s = runStreamSession({ ...AGENT_DEFAULTS.stream, client, credentials, store, router: scripted.router, hostname: 'restored', agentVersion: 'test', saveRenewed: async () => undefined, onRenewed: () => undefined, clock: () => new Date(), logger: silent });
    try {
      await waitFor('delivered after renumbering', () => store.outbox.length() === 0);
      assert.equal(scripted.caughtUp(), 1);
      const seqs = (await ctl.admin.listEvents({ agentId: a.id })).events.map((e) => Number(e.delta!.seq));
      assert.deepEqual(seqs, [1, 2, 3], 'the restored change follows the controller\'s numbers');
    } finally {
      s.cancel();
      await s.done.catch(() => undefined);
      client.close();
      await store.close();
    }
  });

  it('ends with a typed "revoked" error when the agent is revoked', async () => {
    const a = await session('revoked');
    try {
      await waitFor('connected', async () => (await ctl.admin.getAgent({ agentId: a.id })).agent?.connected);
      await ctl.admin.revokeAgent({ agentId: a.id, reason: 'test' });
      const err = await a.outcome;
      assert.ok(err instanceof AgentError && err.code === 'revoked', String(err));
    } finally {
      await a.end();
    }
  });
});
