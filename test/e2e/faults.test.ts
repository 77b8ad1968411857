/**
 * Delivery under faults, with real processes (docs/delivery.md): the controller killed with
 * SIGKILL, the agent killed with SIGKILL mid-batch, Postgres restarted, the controller unreachable
 * while 5,000 changes happen, the agent's queue filling up, and 3,000 operations in a few seconds.
 * Each ends with the controller's stored state equal to the file system and every sequence
 * number accounted for exactly once. Runs against a Postgres cluster of its own (it restarts it),
 * in the Postgres pass of the suite.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { nsToIso } from '../../core/file-state-json.js';
import { tempRoot } from '../support/controllers.js';
import { createServerDatabase } from '../support/databases.js';
import { freePort, postgresBinDir, startPrivatePostgres, type PrivatePostgres } from '../support/private-postgres.js';
import { BIN, runOk, startDaemon, waitFor, type Daemon } from '../support/processes.js';

interface Seen {
  type: string;
  size: number;
  mtime: string;
  sha256: string | null;
}

/** What is on disk below root (root included), as the controller should hold it. */
function diskState(root: string): Map<string, Seen> {
  const out = new Map<string, Seen>();
  const visit = (p: string) => {
    const st = lstatSync(p, { bigint: true });
    const type = st.isDirectory() ? 'directory' : st.isFile() ? 'regular' : 'other';
    out.set(p, { type, size: type === 'directory' ? -1 : Number(st.size), mtime: nsToIso(st.mtimeNs), sha256: type === 'regular' ? createHash('sha256').update(readFileSync(p)).digest('hex') : null });
    if (type === 'directory') for (const name of readdirSync(p)) visit(join(p, name));
  };
  visit(root);
  return out;
}

const skip = !process.env.DATABASE_URL ? 'runs in the Postgres pass (DATABASE_URL)' : !postgresBinDir() ? 'needs the Postgres server binaries and root' : false;

describe('delivery under faults', { timeout: 600_000, skip }, () => {
  const tmp = tempRoot('vigil-faults-');
  const home = join(tmp.root, 'home');
  const agentState = join(tmp.root, 'agent');
  const watched = join(tmp.root, 'watched');
  let pg: PrivatePostgres;
  let env: NodeJS.ProcessEnv;
  let controller: Daemon | undefined;
  let agent: Daemon | undefined;
  let address = '';
  let agentId = '';
  let listenPort = 0;
  const controllerLogs: string[] = [];

  const ctl = (...args: string[]) => runOk(BIN.vigilctl, ['--controller', address, ...args], env);
  const startController = async () => {
    controller = startDaemon(BIN.controller, ['--listen', `127.0.0.1:${listenPort}`, '--enrol-listen', '127.0.0.1:0'], env);
    address = (JSON.parse(await controller.firstLine) as { listening: string }).listening;
  };
  const stopController = async (signal: NodeJS.Signals) => {
    await controller?.kill(signal);
    controllerLogs.push(controller?.log() ?? '');
    controller = undefined;
  };
  const startAgent = () => {
    agent = startDaemon(BIN.agent, ['run', '--state-dir', agentState], env);
  };
  const applyPolicy = async (limits = '') => {
    const file = join(tmp.root, 'policy.yaml');
    writeFileSync(file, `rules:\n  - name: watched\n    paths: [${watched}]\n    alert: false\n${limits}`);
    return (JSON.parse(await ctl('policies', 'apply', '-f', file, '--json')) as { version: number }).version;
  };
  interface ShownAgent {
    delivery: {
      gapsTotal: number;
      gaps: { root: string; reason: string; changesFound: number; detail: string }[];
      scheduledOnly: string[];
      scheduledOnlyTotal: number;
    } | null;
  }
  /** `vigilctl agents show --json` for the agent. */
  const showAgent = async () => JSON.parse(await ctl('agents', 'show', agentId, '--json')) as ShownAgent;
  const eventCount = async () => (JSON.parse(await ctl('agents', 'show', agentId, '--json')) as { eventsStored: number }).eventsStored;

  /** The controller's current state of the agent's files. */
  const storedState = async (): Promise<Map<string, Seen>> => {
    const files = JSON.parse(await ctl('files', '--agent', agentId, '--json')) as { path: string; type: string; size: number; mtime: string; sha256: string | null }[];
    return new Map(files.map((f) => [f.path, { type: f.type, size: f.type === 'directory' ? -1 : f.size, mtime: f.mtime, sha256: f.sha256 }]));
  };
  const differences = (disk: Map<string, Seen>, stored: Map<string, Seen>) => {
    const diffs: string[] = [];
    for (const [p, d] of disk) {
      const s = stored.get(p);
      if (!s) diffs.push(`missing ${p}`);
      else if (JSON.stringify(s) !== JSON.stringify(d)) diffs.push(`differs ${p}: stored ${JSON.stringify(s)}, on disk ${JSON.stringify(d)}`);
    }
    for (const p of stored.keys()) if (!disk.has(p)) diffs.push(`extra ${p}`);
    return diffs;
  };

  /** The end condition of every fault: stored state = disk, every seq accounted for once. */
  const assertConverged = async (what: string) => {
    const disk = diskState(watched);
    let last: string[] = [];
    await waitFor(
      `${what}: the stored state to equal the file system`,
      async () => {
        last = differences(disk, await storedState());
        return last.length === 0;
      },
      120_000,
      500,
    ).catch((err: Error) => {
      const exited = (d: Daemon | undefined, name: string) =>
        d && (d.child.exitCode !== null || d.child.signalCode !== null) ? `; the ${name} exited (${d.child.exitCode ?? d.child.signalCode}): ${d.log().slice(-3000)}` : '';
      throw new Error(`${err.message}; ${last.length} differences, first: ${last.slice(0, 5).join('; ')}${exited(controller, 'controller')}${exited(agent, 'agent')}`);
    });
    const shown = JSON.parse(await ctl('agents', 'show', agentId, '--json')) as { lastSeq: number; eventsStored: number; refreshedCount: number; refusedCount: number; accounted: boolean };
    const events = JSON.parse(await ctl('events', '--json', '--agent', agentId, '--limit', '100000')) as { seq: number }[];
    const seqs = events.map((e) => e.seq);
    assert.equal(new Set(seqs).size, seqs.length, `${what}: no sequence number twice`);
    assert.equal(seqs.length, shown.eventsStored);
    assert.ok(Math.max(0, ...seqs) <= shown.lastSeq);
    assert.equal(shown.eventsStored + shown.refreshedCount + shown.refusedCount, shown.lastSeq, `${what}: every sequence number from 1 to ${shown.lastSeq} is one event or one refreshed delta`);
    assert.equal(shown.accounted, true);
  };

  /** count files written as fast as the disk takes them, under a directory of their own. */
  const writeMany = (dir: string, count: number, content: (i: number) => string) => {
    mkdirSync(dir, { recursive: true });
    for (let i = 0; i < count; i++) writeFileSync(join(dir, `f${i}`), content(i));
  };

  before(async () => {
    mkdirSync(watched, { recursive: true });
    pg = await startPrivatePostgres();
    const db = await createServerDatabase(pg.url);
    env = { ...process.env, VIGIL_HOME: home, DATABASE_URL: db.url, VIGIL_LOG_LEVEL: 'info' };
    delete env.SLACK_TOKEN;
    listenPort = await freePort();
    await runOk(BIN.vigilctl, ['init'], env);
    await startController();
    const { joinString } = JSON.parse(await ctl('tokens', 'create', '--json', '--ttl', '10m', '--uses', '1')) as { joinString: string };
    const out = await runOk(BIN.agent, ['enrol', joinString, '--state-dir', agentState], env);
    agentId = /agent ([0-9a-f-]{36})/.exec(out)![1]!;
    writeMany(join(watched, 'base'), 100, (i) => `base ${i}\n`);
    startAgent();
    await applyPolicy();
    await assertConverged('baseline');
  });

  after(async () => {
    await agent?.kill();
    await controller?.kill();
    pg?.stop();
    tmp.remove();
  });

  it('controller killed with SIGKILL mid-stream and restarted', async () => {
    const before = await eventCount();
    writeMany(join(watched, 'ckill'), 2000, (i) => `ckill ${i}\n`);
    await waitFor('part of the burst committed', async () => (await eventCount()) >= before + 50, 60_000, 20);
    await stopController('SIGKILL');
    await startController();
    await assertConverged('after the controller was killed');
  });

  it('agent killed with SIGKILL mid-batch, with changes while it was down', async () => {
    const before = await eventCount();
    writeMany(join(watched, 'akill'), 2000, (i) => `akill ${i}\n`);
    await waitFor('part of the burst committed', async () => (await eventCount()) >= before + 50, 60_000, 20);
    await agent!.kill('SIGKILL');
    writeMany(join(watched, 'akill'), 500, (i) => `akill while down ${i}\n`);
    rmSync(join(watched, 'base', 'f1')); // a file from before the agent went down
    startAgent();
    await assertConverged('after the agent was killed');
  });

  it('Postgres restarted while changes stream in', async () => {
    const before = await eventCount();
    writeMany(join(watched, 'pg'), 2000, (i) => `pg ${i}\n`);
    await waitFor('part of the burst committed', async () => (await eventCount()) >= before + 50, 60_000, 20);
    pg.restart('immediate');
    writeMany(join(watched, 'pg'), 200, (i) => `pg after restart ${i}\n`);
    await assertConverged('after Postgres restarted');
  });

  it('controller unreachable while 5,000 changes happen', async () => {
    await stopController('SIGTERM');
    writeMany(join(watched, 'away'), 2500, (i) => `away ${i}\n`);
    writeMany(join(watched, 'away'), 2500, (i) => `away, rewritten ${i}\n`);
    // The agent has recorded them (its queue is durable); the controller then comes back.
    await startController();
    await assertConverged('after the controller was unreachable');
  });

  it('the local queue fills up: resync needed, then reconciliation repairs everything', async () => {
    await applyPolicy('limits:\n  queue_size: 64KiB\n');
    await waitFor('the agent applied the bounded queue', async () => (JSON.parse(await ctl('agents', 'show', agentId, '--json')) as { policyVersion: number; delivery: { queueLimitBytes: number } | null }).delivery?.queueLimitBytes === 64 * 1024, 30_000, 100).catch(async () => {
      // The status is sent on connect and on changes: a reconnect shows the new bound too.
      await stopController('SIGTERM');
      await startController();
    });
    await stopController('SIGTERM');
    writeMany(join(watched, 'full'), 2500, (i) => `full ${i}\n`);
    writeMany(join(watched, 'full'), 2500, (i) => `full, rewritten ${i}\n`);
    await startController();
    await assertConverged('after the queue filled up');
    const log = controller!.log() + controllerLogs.join('');
    assert.match(log, /agent queue full: resync needed/, 'the controller heard of the resync');
    const shown = JSON.parse(await ctl('agents', 'show', agentId, '--json')) as { delivery: { resyncNeeded: boolean; lastReconcileRepairs: number } };
    const events = JSON.parse(await ctl('events', '--json', '--agent', agentId, '--path', `${watched}/full/**`, '--limit', '100000')) as { source: string }[];
    assert.ok(events.some((e) => e.source === 'reconcile'), 'what the queue could not hold came as reconcile events');
    await waitFor('the resync flag cleared', async () => !(JSON.parse(await ctl('agents', 'show', agentId, '--json')) as typeof shown).delivery.resyncNeeded, 30_000, 100);
    await applyPolicy();
  });

  it('the kernel event queue overflows while the agent is frozen: re-scanned, and shown as a gap record with its count', async () => {
    const dir = join(watched, 'overflow');
    mkdirSync(dir);
    writeFileSync(join(dir, 'a'), 'a\n');
    writeFileSync(join(dir, 'b'), 'b\n');
    await assertConverged('before the overflow');
    const gapsBefore = (await showAgent()).delivery?.gapsTotal ?? 0;
    // Frozen, the agent reads no events: two files rewritten in turn (a modify and a close-write
    // each, never merged by the kernel) fill the queue, then a file made after the overflow has
    // no event at all. Only the re-scan that the overflow triggers can find it.
    const maxQueued = Number(readFileSync('/proc/sys/fs/inotify/max_queued_events', 'utf8'));
    const pid = agent!.child.pid!;
    process.kill(pid, 'SIGSTOP');
    try {
      for (let i = 0; i < maxQueued / 2 + 500; i++) writeFileSync(join(dir, i % 2 ? 'b' : 'a'), `rewrite ${i}\n`);
      writeFileSync(join(dir, 'made-after-the-overflow'), 'no event\n');
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await assertConverged('after the overflow');
    const shown = await waitFor('a new overflow gap record', async () => {
      const d = (await showAgent()).delivery;
      return d && d.gapsTotal > gapsBefore && d.gaps.some((g) => g.reason === 'overflow') ? d : undefined;
    }, 30_000, 200);
    const gap = shown.gaps.filter((g) => g.reason === 'overflow').at(-1)!;
    assert.equal(gap.root, watched, 'the whole watched root was re-scanned');
    assert.ok(gap.changesFound >= 1, `the re-scan found what the lost events would have reported (${JSON.stringify(gap)})`);
    const made = JSON.parse(await ctl('events', '--json', '--agent', agentId, '--path', `${dir}/made-after-the-overflow`)) as { kind: string; source: string }[];
    assert.deepEqual(made.map((e) => [e.kind, e.source]), [['created', 'scan']], 'the file with no event was found by the re-scan');
    const text = await ctl('agents', 'show', agentId);
    assert.match(text, /gap records: \d+ in all/);
    assert.match(text, new RegExp(`overflow\\s+${gap.changesFound}\\s`), 'the text view lists the gap with its count');
  });

  it('past the policy\'s watch limit, directories are left to scheduled scans, shown as such and as a gap record', async () => {
    const dir = join(watched, 'limited');
    mkdirSync(join(dir, 'inner'), { recursive: true });
    writeFileSync(join(dir, 'inner', 'before'), 'before\n');
    await assertConverged('before the watch limit');
    // One watch: the root's own. Every directory below it is refused and left to the scans.
    const version = await applyPolicy('limits:\n  max_watches: 1\n');
    try {
      // Scheduled-only directories are reported when the watcher starts; the gap once its re-scan
      // (after the policy's scan) is done.
      const limited = await waitFor('the agent to list scheduled-only directories and their gap', async () => {
        const d = (await showAgent()).delivery;
        return d && d.scheduledOnly.some((s) => s.startsWith(`${dir} (`)) && d.gaps.some((g) => g.reason === 'watch_failed') ? d : undefined;
      }, 30_000, 200);
      assert.ok(limited.scheduledOnly.every((s) => /\(watch limit reached/.test(s)), JSON.stringify(limited.scheduledOnly));
      const gap = limited.gaps.filter((g) => g.reason === 'watch_failed').at(-1);
      assert.ok(gap && gap.root === watched && /directories not watched \(watch limit reached/.test(gap.detail), `one gap for the tree: ${JSON.stringify(limited.gaps)}`);
      const text = await ctl('agents', 'show', agentId);
      assert.match(text, new RegExp(`scheduled only \\(not watched in real time\\): ${limited.scheduledOnlyTotal}\\b`));
      assert.ok(text.includes(`  ${dir} (watch limit reached`), text);
      // A change there has no watch: a re-scan (as the schedule would) finds it.
      writeFileSync(join(dir, 'inner', 'unwatched'), 'unwatched\n');
      await ctl('rescan', '--all', '--wait');
      const found = JSON.parse(await ctl('events', '--json', '--agent', agentId, '--path', `${dir}/inner/unwatched`)) as { kind: string; source: string }[];
      assert.deepEqual(found.map((e) => [e.kind, e.source]), [['created', 'rescan']]);
    } finally {
      // Without the limit, everything is watched again (also when an assertion above failed: the
      // tests after this one need every directory watched).
      assert.ok((await applyPolicy()) > version);
    }
    await waitFor('no scheduled-only directory left', async () => (await showAgent()).delivery?.scheduledOnlyTotal === 0, 30_000, 200);
    await assertConverged('after the watch limit');
  });

  it('files that live for under 50 ms while the agent is frozen, or behind a burst, are each recorded with their content', async (t) => {
    const dir = join(watched, 'short-lived');
    mkdirSync(dir);
    writeFileSync(join(dir, 'kept'), 'kept\n');
    await assertConverged('before the short-lived files');
    const sha = (s: string) => createHash('sha256').update(s).digest('hex');
    const lifetimes: number[] = [];
    /** A dropper: written, then deleted at once; how long it existed is kept. */
    const drop = (name: string) => {
      const p = join(dir, name);
      const t0 = performance.now();
      writeFileSync(p, `${name} payload\n`);
      rmSync(p);
      lifetimes.push(performance.now() - t0);
    };
    // 1. Frozen: the agent reads no event until every file is gone.
    const pid = agent!.child.pid!;
    process.kill(pid, 'SIGSTOP');
    try {
      for (let i = 0; i < 200; i++) drop(`frozen-${i}`);
      // A baselined file rewritten and deleted while no one looks.
      writeFileSync(join(dir, 'kept'), 'kept, rewritten\n');
      rmSync(join(dir, 'kept'));
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    // 2. Behind a burst: 5,000 rewrites queue ahead of the droppers' checks.
    mkdirSync(join(dir, 'burst'));
    for (let i = 0; i < 5000; i++) writeFileSync(join(dir, 'burst', `b${i % 500}`), `burst ${i}\n`);
    for (let i = 0; i < 200; i++) drop(`burst-${i}`);
    assert.ok(Math.max(...lifetimes) < 50, `every dropper lived under 50 ms (longest ${Math.max(...lifetimes).toFixed(1)} ms)`);
    const names = [...[...Array(200).keys()].map((i) => `frozen-${i}`), ...[...Array(200).keys()].map((i) => `burst-${i}`)];
    type Ev = { path: string; kind: string; seq: number; sha256: string | null; error: string | null };
    const events = async () => JSON.parse(await ctl('events', '--json', '--agent', agentId, '--path', `${dir}/*`, '--limit', '100000')) as Ev[];
    const all = await waitFor('every short-lived file recorded', async () => {
      const evs = await events();
      const count = (p: string) => evs.filter((e) => e.path === p).length;
      return names.every((n) => count(join(dir, n)) >= 2) && count(join(dir, 'kept')) >= 3 ? evs : undefined;
    }, 120_000, 250);
    const byPath = new Map<string, Ev[]>();
    for (const e of all.sort((a, b) => a.seq - b.seq)) byPath.set(e.path, [...(byPath.get(e.path) ?? []), e]);
    for (const n of names) {
      const seen = byPath.get(join(dir, n))!;
      assert.deepEqual(seen.map((e) => e.kind), ['created', 'deleted'], `${n}: ${JSON.stringify(seen)}`);
      assert.equal(seen[0]!.sha256, sha(`${n} payload\n`), `${n}: recorded with the content it had (${JSON.stringify(seen[0])})`);
    }
    const kept = byPath.get(join(dir, 'kept'))!;
    assert.deepEqual(kept.map((e) => [e.kind, e.sha256]), [['created', sha('kept\n')], ['modified', sha('kept, rewritten\n')], ['deleted', null]]);
    t.diagnostic(`400 droppers, longest lived ${Math.max(...lifetimes).toFixed(1)} ms: each recorded created (with its content) and deleted`);
    await assertConverged('after the short-lived files');
  });

  it('3,000 create, modify and delete operations in a few seconds are all accounted for', async (t) => {
    const dir = join(watched, 'stress');
    mkdirSync(dir);
    const started = Date.now();
    // 1,500 creates, then 1,000 rewrites, then 500 deletes, each phase as fast as the disk takes
    // it. The next phase starts once the agent has caught up with this one (its events are
    // committed), so a file's operations are further apart than the 50 ms coalescing window and
    // each must be an event of its own; how long each phase took is reported. (Creating a file can
    // take a millisecond on a journaled disk: the creates alone may take 1.5 s.)
    const phaseEvents = async (kind: string) =>
      (JSON.parse(await ctl('events', '--json', '--agent', agentId, '--path', `${dir}/s*`, '--limit', '100000')) as { kind: string }[]).filter((e) => e.kind === kind).length;
    const timings: string[] = [];
    const phase = async (what: string, kind: string, op: (i: number) => void, count: number) => {
      const t0 = Date.now();
      for (let i = 0; i < count; i++) op(i);
      const wrote = Date.now() - t0;
      await waitFor(`the ${count} ${what} committed`, async () => (await phaseEvents(kind)) >= count, 120_000, 200);
      timings.push(`${count} ${what}: written in ${wrote} ms, committed after ${Date.now() - t0} ms`);
    };
    await phase('creates', 'created', (i) => writeFileSync(join(dir, `s${i}`), `created ${i}\n`), 1500);
    await phase('rewrites', 'modified', (i) => writeFileSync(join(dir, `s${i}`), `modified ${i}\n`), 1000);
    await phase('deletes', 'deleted', (i) => rmSync(join(dir, `s${i}`)), 500);
    const took = Date.now() - started;
    await assertConverged('after the stress');
    const events = JSON.parse(await ctl('events', '--json', '--agent', agentId, '--path', `${dir}/s*`, '--limit', '100000')) as { path: string; kind: string; seq: number; sha256: string | null }[];
    const byPath = new Map<string, { kind: string; sha256: string | null }[]>();
    for (const e of events.sort((a, b) => a.seq - b.seq)) byPath.set(e.path, [...(byPath.get(e.path) ?? []), { kind: e.kind, sha256: e.sha256 }]);
    const sha = (s: string) => createHash('sha256').update(s).digest('hex');
    // Per file: the events follow its operations in order, each carries a state the file really
    // had, and the last is its final state. An operation without an event of its own was
    // coalesced into a later state of the same file (docs/delivery.md); how many, is reported.
    let ownEvents = 0;
    for (let i = 0; i < 1500; i++) {
      const ops: { kind: string; sha256: string | null }[] = [{ kind: 'created', sha256: sha(`created ${i}\n`) }];
      if (i < 1000) ops.push({ kind: 'modified', sha256: sha(`modified ${i}\n`) });
      if (i < 500) ops.push({ kind: 'deleted', sha256: null });
      const seen = byPath.get(join(dir, `s${i}`)) ?? [];
      let at = 0;
      for (const e of seen) {
        const j = ops.findIndex((o, k) => k >= at && o.sha256 === e.sha256);
        assert.ok(j >= 0, `s${i}: event ${JSON.stringify(e)} is not a later state of the file (${JSON.stringify(seen)})`);
        const kind = seen.indexOf(e) === 0 ? 'created' : e.sha256 === null ? 'deleted' : 'modified';
        assert.equal(e.kind, kind, `s${i}: ${JSON.stringify(seen)}`);
        if (ops[j]!.kind === e.kind) ownEvents++;
        at = j + 1;
      }
      assert.equal(at, ops.length, `s${i}: the last event is the final state (${JSON.stringify(seen)})`);
    }
    t.diagnostic(`${ownEvents} of 3000 operations have an event of their own; ${timings.join('; ')}; ${took} ms in all`);
    assert.equal(ownEvents, 3000, 'every operation, each phase after the agent caught up with the one before, has an event of its own');
  });
});
