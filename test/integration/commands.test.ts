/**
 * Commands as a fleet operation (docs/commands.md), through the real CLI against real controllers
 * (two replicas on one Postgres when DATABASE_URL is set): `rescan --all` reaches connected agents
 * at once and queued ones when they connect, `rescan --wait` exits non-zero when a target failed,
 * expired or did not report in time and prints no line per agent for many, `commands ls/show`.
 */
import assert from 'node:assert/strict';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { enrol } from '../../agent/enrol.js';
import type { VigilHome } from '../../controller/home.js';
import { makeHome, startTestController, tempRoot, testDatabaseEnv, type TestController } from '../support/controllers.js';
import { BIN, runCli, waitFor } from '../support/processes.js';
import { openRawStream, stateCreds, type RawStream } from '../support/raw-agent.js';

/** A hand-driven agent that answers every command it is sent, with a report or a failure. */
interface AnsweringAgent {
  readonly commandIds: string[];
  close(): void;
}

async function answering(address: string, dir: string, failure = ''): Promise<AnsweringAgent> {
  const s: RawStream = openRawStream(address, stateCreds(dir));
  await s.next('welcome');
  const commandIds: string[] = [];
  let seen = 0;
  const timer = setInterval(() => {
    for (; seen < s.messages.length; seen++) {
      const m = s.messages[seen]!;
      if (m.msg.case !== 'command') continue;
      commandIds.push(m.msg.value.id);
      const now = timestampFromDate(new Date());
      s.send({ msg: { case: 'scanReport', value: { commandId: m.msg.value.id, summary: { filesScanned: 7n, changes: 1n, errors: 0n, startedAt: now, finishedAt: now }, failure } } });
    }
  }, 10);
  return {
    commandIds,
    close() {
      clearInterval(timer);
      s.close();
    },
  };
}

interface CommandJson {
  id: string;
  groupId: string;
  agentId: string;
  state: string;
  failure: string | null;
  scan: { filesScanned: number } | null;
}

describe('commands as a fleet operation', { timeout: 180_000 }, () => {
  const { root, remove } = tempRoot('vigil-cmd-');
  let home: VigilHome;
  let a: TestController;
  let b: TestController | undefined;
  let drop: () => Promise<void>;
  let env: NodeJS.ProcessEnv;
  const agents: { dir: string; id: string }[] = [];
  const open: AnsweringAgent[] = [];
  const cli = (...args: string[]) => runCli(BIN.vigilctl, ['--controller', a.controller.address, ...args], env);
  const connect = async (i: number, opts: { failure?: string; via?: TestController } = {}) => {
    const agent = await answering((opts.via ?? a).controller.address, agents[i]!.dir, opts.failure);
    open.push(agent);
    return agent;
  };

  before(async () => {
    home = await makeHome(root, 'home');
    const db = await testDatabaseEnv();
    drop = db.drop;
    a = await startTestController(home, { env: db.env });
    // A second replica on the same Postgres; PGlite is one process, so one replica there.
    if (db.env.DATABASE_URL) b = await startTestController(home, { env: db.env });
    env = { ...process.env, VIGIL_HOME: home.dir };
    // 24 agents: more than rescan prints a line each for (20).
    const { joinString } = await a.admin.createToken({ ttlSeconds: 600, uses: 30 });
    for (let i = 0; i < 24; i++) {
      const dir = join(root, `agent-${i}`);
      agents.push({ dir, id: (await enrol({ joinString, stateDir: dir, logger: pino({ level: 'silent' }) })).agentId });
    }
  });
  after(async () => {
    for (const x of open) x.close();
    await b?.stop();
    await a?.stop();
    await drop?.();
    remove();
  });

  it('rescan --all --wait: connected agents report at once, the offline ones time out (exit 1) with no line per agent; they get it when they connect', async () => {
    for (let i = 0; i < 22; i++) await connect(i, { via: i % 2 && b ? b : a });
    const r = await cli('rescan', '--all', '--wait', '--timeout', '3s');
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.ok(lines.length <= 3, `a summary and the two that did not finish, not a line per agent:\n${r.stdout}`);
    assert.match(lines[0]!, /24 agents: 2 pending, 0 delivered, 22 done, 0 failed, 0 expired/);
    for (const i of [22, 23]) assert.ok(lines.some((l) => l.startsWith(agents[i]!.id) && /timed out/.test(l)), r.stdout);
    const groupId = /group (\S+)/.exec(r.stderr)![1]!;

    const pending = JSON.parse((await cli('commands', 'ls', '--state', 'pending', '--group', groupId, '--json')).stdout) as CommandJson[];
    assert.deepEqual(pending.map((c) => c.agentId).sort(), [agents[22]!.id, agents[23]!.id].sort());
    // The two connect (one to each replica when there are two): their queued command comes down.
    const late = [await connect(22), await connect(23, { via: b ?? a })];
    await waitFor('the queued commands to be delivered', () => late.every((x) => x.commandIds.length === 1) || undefined, 10_000, 20);
    const shown = await waitFor('every agent done', async () => {
      const j = JSON.parse((await cli('commands', 'show', groupId, '--json')).stdout) as { counts: Record<string, number>; commands: CommandJson[] };
      return j.counts.done === 24 ? j : undefined;
    });
    assert.equal(shown.commands.length, 24);
    assert.ok(shown.commands.every((c) => c.state === 'done' && c.scan?.filesScanned === 7));
    assert.deepEqual(shown.counts, { pending: 0, delivered: 0, done: 24, failed: 0, expired: 0 });
  });

  it('rescan --agent --wait exits 0 when the agent reported, on whichever replica it is connected to', async () => {
    const r = await cli('rescan', '--agent', agents[1]!.id, '--wait', '10s');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /scanned 7 paths, 1 change\(s\), 0 error\(s\)/);
    const json = JSON.parse((await cli('rescan', '--agent', agents[0]!.id, '--wait', '10s', '--json')).stdout) as { completed: boolean; state: string; filesScanned: number }[];
    assert.deepEqual(json.map((x) => [x.completed, x.state, x.filesScanned]), [[true, 'done', 7]]);
  });

  it("exits 1 when the agent says the command failed, and commands show gives the agent's reason", async () => {
    const i = 20;
    open.splice(0).forEach((x) => x.close());
    await connect(i, { failure: 'no policy applied yet' });
    const r = await cli('rescan', '--agent', agents[i]!.id, '--wait', '10s', '--json');
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const [row] = JSON.parse(r.stdout) as { commandId: string; state: string; failure: string }[];
    assert.deepEqual([row!.state, row!.failure], ['failed', 'no policy applied yet']);
    const shown = await cli('commands', 'show', row!.commandId);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /failed: no policy applied yet/);
    assert.match(shown.stdout, /1 agent: 0 pending, 0 delivered, 0 done, 1 failed, 0 expired/);
  });

  it('a command for an offline agent expires (exit 1) and is not delivered when it connects later', async () => {
    const i = 21; // not connected since the previous test
    const r = await cli('rescan', '--agent', agents[i]!.id, '--expire-after', '1s', '--wait', '10s', '--json');
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const [row] = JSON.parse(r.stdout) as { commandId: string; state: string }[];
    assert.equal(row!.state, 'expired');
    const expired = JSON.parse((await cli('commands', 'ls', '--agent', agents[i]!.id, '--state', 'expired', '--json')).stdout) as CommandJson[];
    assert.deepEqual(expired.map((c) => c.id), [row!.commandId]);
    // It connects: a fresh command reaches it, the expired one never does.
    const agent = await connect(i);
    const fresh = await cli('rescan', '--agent', agents[i]!.id, '--wait', '10s', '--json');
    assert.equal(fresh.code, 0, fresh.stdout + fresh.stderr);
    const [freshRow] = JSON.parse(fresh.stdout) as { commandId: string }[];
    assert.deepEqual(agent.commandIds, [freshRow!.commandId]);
  });

  it('rescan without --wait queues for an offline agent and exits 0; commands ls says so, and refuses a state it does not know', async () => {
    const i = 22;
    open.splice(0).forEach((x) => x.close());
    const r = await cli('rescan', '--agent', agents[i]!.id, '--json');
    assert.equal(r.code, 0, r.stderr);
    const [row] = JSON.parse(r.stdout) as { commandId: string; delivered: boolean; state: string }[];
    assert.deepEqual([row!.delivered, row!.state], [false, 'pending']);
    const ls = await cli('commands', 'ls', '--agent', agents[i]!.id, '--limit', '1');
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout.split('\n')[1]!, new RegExp(`^${row!.commandId}\\s.*\\spending\\s`));
    assert.match(ls.stderr, /--limit/, 'older ones match too');
    const bad = await cli('commands', 'ls', '--state', 'sleeping');
    assert.equal(bad.code, 1);
    assert.equal(bad.stdout, '');
    assert.equal((await cli('commands', 'show', 'no-such-group')).code, 1);
  });
});
