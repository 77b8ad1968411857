/**
 * End to end, with real processes: vigilctl init, the controller on port 0 (Postgres when
 * DATABASE_URL is set, PGlite otherwise), a token, an agent enrolled with it, a policy, real file
 * changes seen by inotify, a Slack stand-in, a re-scan, and an agent killed with SIGKILL mid-stream.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendFileSync, chmodSync, linkSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createServerDatabase } from '../support/databases.js';
import { BIN, runCli, runOk, startDaemon, waitFor, type Daemon } from '../support/processes.js';
import { startSlackStandIn, type SlackStandIn } from '../fakes/slack-stand-in.js';

interface EventJson {
  agentId: string;
  seq: number;
  path: string;
  kind: string;
  source: string;
  sha256: string | null;
  size: number | null;
  mode: number | null;
  uid: number | null;
  gid: number | null;
  mtime: string | null;
  detectedAt: string;
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

/** Runs `make` once, on first use: what several tests need, whichever of them runs first (or alone). */
function once<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => (made ??= make());
}

describe('vigil end to end', { timeout: 180_000 }, () => {
  const root = mkdtempSync(join(tmpdir(), 'vigil-e2e-'));
  const home = join(root, 'home');
  const agentState = join(root, 'agent');
  const watched = join(root, 'watched');
  const outside = join(root, 'outside');
  const staging = join(root, 'staging');
  let env: NodeJS.ProcessEnv;
  let dropDb: (() => Promise<void>) | undefined;
  let slack: SlackStandIn;
  let controller: Daemon;
  let agent: Daemon;
  let address = '';
  let agentId = '';

  const ctl = (...args: string[]) => runOk(BIN.vigilctl, ['--controller', address, ...args], env);
  const events = async (): Promise<EventJson[]> => JSON.parse(await ctl('events', '--json', '--agent', agentId, '--limit', '100000')) as EventJson[];
  const eventsFor = async (path: string) => (await events()).filter((e) => e.path === path);
  const startAgent = () => startDaemon(BIN.agent, ['run', '--state-dir', agentState], env);

  // Each test sets up what it needs through these, so any one of them runs alone
  // (--test-name-pattern) or in any order; the shared before() only starts the controller.

  /** The agent, enrolled with a one-use token (not running yet). */
  const enrolled = once(async () => {
    const { joinString } = JSON.parse(await ctl('tokens', 'create', '--json', '--ttl', '10m', '--uses', '1')) as { joinString: string };
    const out = await runOk(BIN.agent, ['enrol', joinString, '--state-dir', agentState], env);
    agentId = /agent ([0-9a-f-]{36})/.exec(out)![1]!;
    return { joinString };
  });

  /**
   * The enrolled agent running under a policy on `watched` (with a file in it and one the policy
   * excludes), once its baseline has reached the controller.
   */
  const monitoring = once(async () => {
    await enrolled();
    writeFileSync(join(watched, 'existing.conf'), 'x=1\n');
    writeFileSync(join(watched, 'ignored.swp'), 'swap');
    agent = startAgent();
    const policyFile = join(root, 'policy.yaml');
    writeFileSync(policyFile, `rules:\n  - name: web\n    paths: [${watched}]\n    exclude: ["**/*.swp"]\n    alert: true\n`);
    const applied = JSON.parse(await ctl('policies', 'apply', '-f', policyFile, '--json')) as { version: number };
    const baseline = await waitFor('baseline events', async () => {
      const ev = await events();
      return ev.some((e) => e.path.endsWith('existing.conf')) ? ev : undefined;
    });
    return { applied, baseline };
  });

  before(async () => {
    for (const d of [watched, outside, staging]) mkdirSync(d, { recursive: true });
    slack = await startSlackStandIn();
    env = { ...process.env, VIGIL_HOME: home, SLACK_TOKEN: 'xoxb-test-token', SLACK_CHANNEL: '#fim', SLACK_API_URL: slack.apiUrl, VIGIL_LOG_LEVEL: 'info' };
    if (process.env.DATABASE_URL) {
      const db = await createServerDatabase(process.env.DATABASE_URL);
      env.DATABASE_URL = db.url;
      dropDb = db.drop;
    } else {
      delete env.DATABASE_URL;
    }
    await runOk(BIN.vigilctl, ['init'], env);
    controller = startDaemon(BIN.controller, ['--listen', '127.0.0.1:0', '--enrol-listen', '127.0.0.1:0'], env);
    address = (JSON.parse(await controller.firstLine) as { listening: string }).listening;
  });

  after(async () => {
    await agent?.kill();
    await controller?.kill();
    await slack?.close();
    await dropDb?.();
    rmSync(root, { recursive: true, force: true });
  });

  it('init keeps an existing CA, and bad input gets a one-line error', async () => {
    const caBefore = readFileSync(join(home, 'ca.pem'), 'utf8');
    await runOk(BIN.vigilctl, ['init'], env);
    assert.equal(readFileSync(join(home, 'ca.pem'), 'utf8'), caBefore, 'a second init does not replace the CA');
    assert.equal(statSync(join(home, 'ca.key')).mode & 0o777, 0o600);
    assert.equal(statSync(join(home, 'operator.key')).mode & 0o777, 0o600);
    const bad = join(root, 'bad-policy.yaml');
    writeFileSync(bad, 'rules:\n  - name: web\n    paths: [/srv]\n    alret: true\n');
    const res = await runCli(BIN.vigilctl, ['--controller', address, 'policies', 'apply', '-f', bad], env);
    assert.equal(res.code, 1);
    assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
    assert.match(res.stderr, /rules\[0\]\.alret: unknown key/);
    const noCtl = await runCli(BIN.vigilctl, ['--controller', '127.0.0.1:1', 'agents', 'ls'], env);
    assert.equal(noCtl.code, 1);
    assert.equal(noCtl.stderr.trim().split('\n').length, 1, noCtl.stderr);
  });

  it('enrols an agent with a one-use token, and the token cannot be used twice', async () => {
    const { joinString } = await enrolled();
    assert.match(joinString, /^vigil:\/\/127\.0\.0\.1:\d+\?token=[a-z0-9]{10}\.[A-Za-z0-9_-]{43}&pin=sha256%3A[0-9a-f]{64}$/);
    assert.match(agentId, /^[0-9a-f-]{36}$/);
    const again = await runCli(BIN.agent, ['enrol', joinString, '--state-dir', join(root, 'agent2')], env);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /token has no uses left/);
    const secret = joinString.split('token=')[1]!.split('&')[0]!.split('.')[1]!;
    assert.ok(!again.stderr.includes(secret), 'the token is not echoed');
    assert.ok(!controller.log().includes(secret), 'the token secret is never logged');
    assert.match(controller.log(), /enrolment refused/);
  });

  it('streams the baseline once a policy is applied', async () => {
    const { applied, baseline } = await monitoring();
    assert.ok(applied.version >= 1);
    const existing = baseline.find((e) => e.path === join(watched, 'existing.conf'))!;
    assert.equal(existing.kind, 'created');
    assert.equal(existing.source, 'baseline', 'the first baseline is marked as such');
    assert.equal(existing.sha256, sha256('x=1\n'));
    assert.ok(!baseline.some((e) => e.path.endsWith('.swp')), 'excluded paths are not reported');
    const agents = JSON.parse(await ctl('agents', 'ls', '--json')) as { id: string; connected: boolean; policyVersion: number }[];
    const me = agents.find((a) => a.id === agentId)!;
    assert.equal(me.connected, true);
    await waitFor('policy version recorded', async () => {
      const list = JSON.parse(await ctl('agents', 'ls', '--json')) as { id: string; policyVersion: number }[];
      return list.find((a) => a.id === agentId)?.policyVersion === applied.version;
    });
  });

  it('reports create, modify, chmod and delete in order, with independently checked hashes', async () => {
    await monitoring();
    const file = join(watched, 'index.php');
    writeFileSync(join(staging, 'index.php'), '<?php echo "hi";\n');
    renameSync(join(staging, 'index.php'), file);
    await waitFor('created', async () => (await eventsFor(file)).length === 1);
    appendFileSync(file, 'system($_GET["c"]);\n');
    await waitFor('modified', async () => (await eventsFor(file)).length === 2);
    chmodSync(file, 0o600);
    await waitFor('attributes', async () => (await eventsFor(file)).length === 3);
    unlinkSync(file);
    const ev = await waitFor('deleted', async () => {
      const e = await eventsFor(file);
      return e.length === 4 ? e : undefined;
    });
    assert.deepEqual(ev.map((e) => e.kind), ['created', 'modified', 'attributes', 'deleted']);
    assert.ok(ev.every((e, i) => i === 0 || e.seq > ev[i - 1]!.seq), 'sequence numbers increase');
    assert.equal(ev[0]!.sha256, sha256('<?php echo "hi";\n'));
    const content = '<?php echo "hi";\nsystem($_GET["c"]);\n';
    assert.equal(ev[1]!.sha256, sha256(content));
    assert.equal(ev[1]!.size, Buffer.byteLength(content));
    assert.equal(ev[2]!.sha256, sha256(content), 'chmod leaves the content hash');
    assert.equal(ev[2]!.mode! & 0o7777, 0o600);
    assert.equal(ev[1]!.mode! & 0o7777, 0o644 & ~process.umask());
    assert.equal(ev[3]!.sha256, null);
    assert.ok(ev.every((e) => e.source === 'realtime'));
    assert.ok(ev.slice(0, 3).every((e) => e.uid === process.getuid!()));
  });

  it('posts an alert to Slack through the Web API', async () => {
    await monitoring();
    // A change of its own to alert on (the policy says alert: true), made like any other.
    const file = join(watched, 'alerting.php');
    writeFileSync(join(staging, 'alerting.php'), '<?php echo "alert";\n');
    renameSync(join(staging, 'alerting.php'), file);
    const post = await waitFor('a Slack post', () => slack.posts.find((p) => p.method === 'chat.postMessage' && p.params.text?.includes('alerting.php')));
    assert.equal(post.authorization, 'Bearer xoxb-test-token');
    assert.equal(post.params.channel, '#fim');
    assert.ok(!slack.posts.some((p) => p.params.text?.includes('existing.conf')), 'a first baseline does not alert');
    assert.ok(!controller.log().includes('xoxb-test-token'), 'the Slack token is never logged');
  });

  it('rescan finds a change the watcher could not see', async () => {
    await monitoring();
    const file = join(watched, 'lib.so');
    writeFileSync(join(staging, 'lib.so'), 'v1');
    renameSync(join(staging, 'lib.so'), file);
    await waitFor('created', async () => (await eventsFor(file)).length === 1);
    // Written through a hard link outside the watched tree: inotify on the watched directory
    // does not see it; only a scan does.
    linkSync(file, join(outside, 'lib-link'));
    appendFileSync(join(outside, 'lib-link'), '-patched');
    const report = JSON.parse(await ctl('rescan', '--agent', agentId, '--wait', '30s', '--json')) as { completed: boolean; changes: number; filesScanned: number }[];
    assert.equal(report.length, 1);
    assert.equal(report[0]!.completed, true);
    assert.ok(report[0]!.filesScanned >= 3);
    assert.equal(report[0]!.changes, 1);
    const ev = await eventsFor(file);
    assert.equal(ev.length, 2);
    assert.equal(ev[1]!.kind, 'modified');
    assert.equal(ev[1]!.source, 'rescan');
    assert.equal(ev[1]!.sha256, sha256('v1-patched'));
  });

  it('loses and doubles nothing when the agent is killed with SIGKILL mid-stream', async () => {
    await monitoring();
    const burst = join(watched, 'burst');
    mkdirSync(burst);
    const names: string[] = [];
    for (let i = 0; i < 300; i++) {
      const name = join(burst, `f${i}.txt`);
      writeFileSync(join(staging, 'f'), `content ${i}\n`);
      renameSync(join(staging, 'f'), name);
      names.push(name);
    }
    await waitFor('some of the burst committed', async () => (await events()).filter((e) => e.path.startsWith(burst + '/')).length >= 10, 30_000, 20);
    await agent.kill('SIGKILL');
    // Changes while the agent is down are found by its start-up check.
    for (let i = 300; i < 350; i++) {
      const name = join(burst, `f${i}.txt`);
      writeFileSync(name, `content ${i}\n`);
      names.push(name);
    }
    agent = startAgent();
    const all = await waitFor(
      'every file of the burst',
      async () => {
        const ev = await events();
        const paths = new Set(ev.filter((e) => e.kind === 'created').map((e) => e.path));
        return names.every((n) => paths.has(n)) ? ev : undefined;
      },
      60_000,
      250,
    );
    for (const [i, n] of names.entries()) {
      const forFile = all.filter((e) => e.path === n);
      assert.equal(forFile.length, 1, `${n}: exactly one event, got ${JSON.stringify(forFile)}`);
      assert.equal(forFile[0]!.kind, 'created');
      assert.equal(forFile[0]!.sha256, sha256(`content ${i}\n`));
    }
    // Every seq from 1 is one history row or one refreshed delta (current state only), once.
    const seqs = all.map((e) => e.seq).sort((a, b) => a - b);
    assert.equal(new Set(seqs).size, seqs.length, 'no seq twice');
    const shown = JSON.parse(await ctl('agents', 'show', agentId, '--json')) as { lastSeq: number; eventsStored: number; refreshedCount: number; refusedCount: number; accounted: boolean };
    assert.ok(seqs[seqs.length - 1]! <= shown.lastSeq);
    assert.equal(shown.eventsStored, seqs.length);
    assert.equal(shown.eventsStored + shown.refreshedCount + shown.refusedCount, shown.lastSeq, 'every sequence number from 1 exactly once');
    assert.equal(shown.accounted, true);
  });
});
