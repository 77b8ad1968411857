/**
 * A policy that shrinks (docs/delivery.md, "A path leaving the policy"), with real processes:
 * two rules, then one, then none and back. The paths that left are dropped from the controller's
 * current state without history, and delivery goes on: a change under the kept rule arrives
 * within a second.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tempRoot, testDatabaseEnv } from '../support/controllers.js';
import { BIN, runOk, startDaemon, waitFor, type Daemon } from '../support/processes.js';

describe('a policy that shrinks', { timeout: 120_000 }, () => {
  const tmp = tempRoot('vigil-shrink-');
  const home = join(tmp.root, 'home');
  const agentState = join(tmp.root, 'agent');
  const kept = join(tmp.root, 'kept');
  const dropped = join(tmp.root, 'dropped');
  let env: NodeJS.ProcessEnv;
  let dropDb: (() => Promise<void>) | undefined;
  let controller: Daemon | undefined;
  let agent: Daemon | undefined;
  let address = '';
  let agentId = '';
  let policyN = 0;

  const ctl = (...args: string[]) => runOk(BIN.vigilctl, ['--controller', address, ...args], env);
  const apply = async (dirs: string[]) => {
    const file = join(tmp.root, `policy-${policyN++}.yaml`);
    writeFileSync(file, dirs.length ? `rules:\n${dirs.map((d, i) => `  - name: r${i}\n    paths: [${d}]\n    alert: false\n`).join('')}` : 'rules: []\n');
    return (JSON.parse(await ctl('policies', 'apply', '-f', file, '--json')) as { version: number }).version;
  };
  const files = async () => (JSON.parse(await ctl('files', '--agent', agentId, '--json')) as { path: string }[]).map((f) => f.path);
  const shown = async () => JSON.parse(await ctl('agents', 'show', agentId, '--json')) as { accounted: boolean; policyVersion: number; refusedCount: number; lastSeq: number; connected: boolean };

  before(async () => {
    for (const d of [kept, dropped]) mkdirSync(d, { recursive: true });
    writeFileSync(join(kept, 'k1'), 'kept\n');
    writeFileSync(join(dropped, 'd1'), 'dropped\n');
    writeFileSync(join(dropped, 'd2'), 'dropped too\n');
    const db = await testDatabaseEnv();
    dropDb = db.drop;
    env = { ...process.env, VIGIL_HOME: home, VIGIL_LOG_LEVEL: 'info' };
    delete env.SLACK_TOKEN;
    delete env.DATABASE_URL;
    Object.assign(env, db.env);
    await runOk(BIN.vigilctl, ['init'], env);
    controller = startDaemon(BIN.controller, ['--listen', '127.0.0.1:0', '--enrol-listen', '127.0.0.1:0'], env);
    address = (JSON.parse(await controller.firstLine) as { listening: string }).listening;
    const { joinString } = JSON.parse(await ctl('tokens', 'create', '--json')) as { joinString: string };
    agentId = /agent ([0-9a-f-]{36})/.exec(await runOk(BIN.agent, ['enrol', joinString, '--state-dir', agentState], env))![1]!;
    agent = startDaemon(BIN.agent, ['run', '--state-dir', agentState], env);
  });

  after(async () => {
    await agent?.kill();
    await controller?.kill();
    await dropDb?.();
    tmp.remove();
  });

  it('two rules, then one: the dropped paths leave the current state, and a change under the kept rule arrives within a second', async () => {
    await apply([kept, dropped]);
    await waitFor('both trees baselined', async () => (await files()).includes(join(dropped, 'd2')) && (await files()).includes(join(kept, 'k1')), 30_000, 100);
    const eventsBefore = (JSON.parse(await ctl('events', '--json', '--agent', agentId, '--limit', '100000')) as unknown[]).length;
    const version = await apply([kept]);
    await waitFor('the dropped tree gone from the current state', async () => !(await files()).some((p) => p.startsWith(`${dropped}`)), 30_000, 100);
    await waitFor('the agent on the new policy', async () => (await shown()).policyVersion === version, 30_000, 100);
    const t0 = Date.now();
    writeFileSync(join(kept, 'after-shrink'), 'after the shrink\n');
    // Measured to the controller's commit (same clock), not to when a vigilctl poll saw it: a
    // vigilctl start takes a few hundred ms on a loaded machine.
    const arrived = await waitFor('the change under the kept rule', async () => {
      const ev = JSON.parse(await ctl('events', '--json', '--agent', agentId, '--path', join(kept, 'after-shrink'))) as { committedAt: string }[];
      return ev.length ? Date.parse(ev[0]!.committedAt) - t0 : undefined;
    }, 10_000, 20);
    assert.ok(arrived < 1000, `committed ${arrived} ms after the write`);
    const events = JSON.parse(await ctl('events', '--json', '--agent', agentId, '--limit', '100000')) as { path: string }[];
    assert.equal(events.length, eventsBefore + 1, 'leaving the policy made no history row; the new file made one');
    const s = await shown();
    assert.equal(s.refusedCount, 0, 'nothing refused');
    assert.equal(s.accounted, true);
    assert.deepEqual((await files()).filter((p) => p !== kept && !p.startsWith(`${kept}/`)), [], 'only the kept tree is held');
  });

  it('no rules at all, then both again: nothing is held, then everything is baselined again and delivery goes on', async () => {
    await apply([]);
    await waitFor('nothing held', async () => (await files()).length === 0, 30_000, 100);
    // A file made while no rule covers it is baselined with the rest when the rules come back.
    writeFileSync(join(kept, 'k2'), 'while no rule\n');
    await apply([kept, dropped]);
    await waitFor('both trees held again', async () => {
      const f = await files();
      return [join(kept, 'k1'), join(kept, 'k2'), join(dropped, 'd1'), join(dropped, 'd2')].every((p) => f.includes(p));
    }, 30_000, 100);
    writeFileSync(join(dropped, 'd3'), 'new\n');
    await waitFor('a change in the returned tree', async () => (await files()).includes(join(dropped, 'd3')), 10_000, 50);
    assert.equal((await shown()).accounted, true);
  });
});
