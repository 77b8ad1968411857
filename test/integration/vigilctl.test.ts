/**
 * vigilctl as a new operator meets it (docs/cli.md): the real CLI process against a controller,
 * checking behaviour (exit codes, where output goes, what is accepted), not wording.
 */
import assert from 'node:assert/strict';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { enrol } from '../../agent/enrol.js';
import type { VigilHome } from '../../controller/home.js';
import { makeHome, startTestController, tempRoot, testDatabaseEnv, type TestController } from '../support/controllers.js';
import { BIN, runCli } from '../support/processes.js';
import { openRawStream, stateCreds } from '../support/raw-agent.js';
import { encodeXattrs } from '../../core/xattr-encoding.js';

const created = (seq: number, path: string, kind = 1) => ({
  seq: BigInt(seq),
  path: Buffer.from(path),
  kind,
  ...(kind === 3 ? {} : { state: { type: 1, size: 1n, mode: 0o100644, sha256: Buffer.alloc(32, seq) } }),
  detectedAt: timestampFromDate(new Date()),
  source: 1,
});

describe('vigilctl for a new operator', { timeout: 120_000 }, () => {
  const { root, remove } = tempRoot('vigil-cli-');
  let home: VigilHome;
  let ctl: TestController;
  let drop: () => Promise<void>;
  let env: NodeJS.ProcessEnv;
  let skew = 0;
  const agents: { dir: string; id: string }[] = [];
  const cli = (...args: string[]) => runCli(BIN.vigilctl, ['--controller', ctl.controller.address, ...args], env);

  before(async () => {
    home = await makeHome(root, 'home');
    const db = await testDatabaseEnv();
    drop = db.drop;
    // The controller's clock runs ahead by `skew`, which a test moves instead of sleeping.
    ctl = await startTestController(home, { env: db.env, clock: () => new Date(Date.now() + skew) });
    env = { ...process.env, VIGIL_HOME: home.dir };
    // 17 agents: two of them share the first hex digit of their id (pigeonhole), for prefixes.
    const { joinString } = await ctl.admin.createToken({ ttlSeconds: 600, uses: 17 });
    for (let i = 0; i < 17; i++) {
      const dir = join(root, `agent-${i}`);
      agents.push({ dir, id: (await enrol({ joinString, stateDir: dir, logger: pino({ level: 'silent' }) })).agentId });
    }
    const s = openRawStream(ctl.controller.address, stateCreds(agents[0]!.dir));
    await s.next('welcome');
    s.send({ msg: { case: 'deltas', value: { deltas: [created(1, '/w/a'), created(2, '/w/b'), created(3, '/w/a', 3)] } } });
    await s.next('ack');
    s.close();
  });
  after(async () => {
    await ctl?.stop();
    await drop?.();
    remove();
  });

  it('prints its version, as the other two programs do', async () => {
    for (const bin of [BIN.vigilctl, BIN.agent, BIN.controller]) {
      const r = await runCli(bin, ['--version'], env);
      assert.equal(r.code, 0);
      assert.match(r.stdout.trim(), /^\d+\.\d+\.\d+$/);
    }
  });

  it('says in one line when there is no home, or no controller at the address it tried', async () => {
    const noHome = await runCli(BIN.vigilctl, ['agents', 'ls'], { ...env, VIGIL_HOME: join(root, 'nowhere') });
    assert.equal(noHome.code, 1);
    assert.equal(noHome.stderr.trim().split('\n').length, 1, noHome.stderr);
    assert.ok(noHome.stderr.includes(join(root, 'nowhere')) && noHome.stderr.includes('vigilctl init'), noHome.stderr);
    const noCtl = await runCli(BIN.vigilctl, ['--controller', '127.0.0.1:1', 'agents', 'ls'], env);
    assert.equal(noCtl.code, 1);
    assert.equal(noCtl.stderr.trim().split('\n').length, 1, noCtl.stderr);
    assert.ok(noCtl.stderr.includes('127.0.0.1:1'), noCtl.stderr);
  });

  it('exits quietly when its reader goes away (vigilctl events | head)', async () => {
    const child = spawn(process.execPath, [BIN.vigilctl, '--controller', ctl.controller.address, 'events', '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0, stderr);
    assert.equal(stderr, '', 'no stack trace');
  });

  it('says on stderr when output is cut, and --all gives everything', async () => {
    const cut = await cli('events', '--limit', '2', '--json');
    assert.equal(cut.code, 0);
    assert.equal((JSON.parse(cut.stdout) as unknown[]).length, 2);
    assert.match(cut.stderr, /--all/);
    const all = await cli('events', '--all', '--json');
    assert.equal((JSON.parse(all.stdout) as unknown[]).length, 3);
    assert.equal(all.stderr, '');
  });

  it('accepts a unique prefix of an agent id everywhere, and refuses an ambiguous or unknown one', async () => {
    const a = agents[0]!.id;
    const shown = await cli('agents', 'show', a.slice(0, 8), '--json');
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal((JSON.parse(shown.stdout) as { id: string }).id, a);
    assert.equal((JSON.parse((await cli('events', '--agent', a.slice(0, 8), '--json')).stdout) as unknown[]).length, 3);
    const files = await cli('files', '--agent', a.slice(0, 8), '--json');
    assert.deepEqual((JSON.parse(files.stdout) as { path: string }[]).map((f) => f.path), ['/w/b']);
    const byDigit = new Map<string, string[]>();
    for (const { id } of agents) byDigit.set(id[0]!, [...(byDigit.get(id[0]!) ?? []), id]);
    const [digit, shared] = [...byDigit].find(([, ids]) => ids.length > 1)!;
    const ambiguous = await cli('agents', 'show', digit);
    assert.equal(ambiguous.code, 1);
    for (const id of shared) assert.ok(ambiguous.stderr.includes(id), `the candidates are listed: ${ambiguous.stderr}`);
    for (const args of [['files', '--agent', 'nonexistent'], ['agents', 'show', 'nonexistent'], ['events', '--agent', 'nonexistent']]) {
      const r = await cli(...args);
      assert.equal(r.code, 1, args.join(' '));
      assert.equal(r.stdout, '', `${args.join(' ')}: nothing printed, not even a header`);
    }
  });

  it('takes -o json as --json, and -o wide for more columns', async () => {
    const a = JSON.parse((await cli('agents', 'ls', '-o', 'json')).stdout) as { id: string }[];
    const b = JSON.parse((await cli('agents', 'ls', '--json')).stdout) as { id: string }[];
    assert.deepEqual(a.map((x) => x.id), b.map((x) => x.id));
    const wide = (await cli('events', '-o', 'wide')).stdout.split('\n')[0]!;
    const narrow = (await cli('events')).stdout.split('\n')[0]!;
    assert.ok(wide.split(/\s+/).length > narrow.split(/\s+/).length, `${wide} / ${narrow}`);
    assert.equal((await cli('agents', 'ls', '-o', 'yaml')).code, 1);
    const help = await cli('agents', 'show', '--help');
    assert.match(help.stdout, /--controller/, 'global options in every subcommand help');
  });

  it('filters events by kind and time, and the audit log by time', async () => {
    const deleted = JSON.parse((await cli('events', '--kind', 'deleted', '--json')).stdout) as { kind: string }[];
    assert.deepEqual(deleted.map((e) => e.kind), ['deleted']);
    assert.equal((JSON.parse((await cli('events', '--until', '2000-01-01T00:00:00Z', '--json')).stdout) as unknown[]).length, 0);
    assert.equal((JSON.parse((await cli('events', '--until', '2099-01-01T00:00:00Z', '--json')).stdout) as unknown[]).length, 3);
    assert.equal((await cli('events', '--kind', 'exploded')).code, 1);
    const recent = JSON.parse((await cli('audit', '--since', '1h', '--json')).stdout) as { action: string }[];
    assert.ok(recent.some((e) => e.action === 'tokens.create'));
    assert.equal((JSON.parse((await cli('audit', '--since', '2099-01-01T00:00:00Z', '--json')).stdout) as unknown[]).length, 0);
  });

  it('tokens create: the join string alone on stdout, the token id on stderr; tokens ls shows labels', async () => {
    const r = await cli('tokens', 'create', '--label', 'role=web');
    assert.equal(r.code, 0);
    assert.match(r.stdout.trim(), /^vigil:\/\/\S+$/);
    const id = /token=([a-z0-9]+)\./.exec(r.stdout)![1]!;
    assert.ok(r.stderr.includes(id), r.stderr);
    const ls = (await cli('tokens', 'ls')).stdout.split('\n').find((l) => l.startsWith(id))!;
    assert.match(ls, /role=web/);
  });

  it('events say which named attribute (acl, selinux) changed', async () => {
    const label = (l: string) => encodeXattrs([[Buffer.from('security.selinux'), Buffer.from(`${l}\0`)]]);
    const s = openRawStream(ctl.controller.address, stateCreds(agents[3]!.dir));
    await s.next('welcome');
    const st = (l: string) => ({ type: 1, size: 1n, mode: 0o100644, sha256: Buffer.alloc(32, 1), attrValues: label(l) });
    s.send({ msg: { case: 'deltas', value: { deltas: [
      { seq: 1n, path: Buffer.from('/etc/shadow'), kind: 1, state: st('system_u:object_r:shadow_t:s0'), detectedAt: timestampFromDate(new Date()), source: 1 },
      { seq: 2n, path: Buffer.from('/etc/shadow'), kind: 4, state: st('system_u:object_r:etc_t:s0'), detectedAt: timestampFromDate(new Date()), source: 1 },
    ] } } });
    await s.next('ack');
    s.close();
    const evs = JSON.parse((await cli('events', '--agent', agents[3]!.id, '--json')).stdout) as { kind: string; attributes: Record<string, string>; attributesChanged: string[] }[];
    assert.deepEqual(evs.map((e) => [e.kind, e.attributesChanged]), [['created', []], ['attributes', ['security.selinux']]]);
    assert.equal(evs[1]!.attributes['security.selinux'], 'system_u:object_r:etc_t:s0');
  });

  it('admins ls lists operators with their role and status', async () => {
    const added = await cli('admins', 'add', 'alice', '--role', 'viewer', '--out', join(root, 'alice-home'));
    assert.equal(added.code, 0, added.stderr);
    const list = JSON.parse((await cli('admins', 'ls', '--json')).stdout) as { name: string; role: string; status: string }[];
    assert.deepEqual(list.find((a) => a.name === 'alice'), { ...list.find((a) => a.name === 'alice'), role: 'viewer', status: 'active' });
    assert.equal(list.find((a) => a.name === 'admin')?.role, 'admin', 'the first operator, made by init');
    assert.equal((await cli('admins', 'revoke', 'alice')).code, 0);
    const after = JSON.parse((await cli('admins', 'ls', '--json')).stdout) as { name: string; status: string }[];
    assert.equal(after.find((a) => a.name === 'alice')?.status, 'revoked');
  });

  it('rescan of an agent that is not connected exits 1', async () => {
    const r = await cli('rescan', '--agent', agents[1]!.id, '--wait', '2s');
    assert.equal(r.code, 1, r.stdout + r.stderr);
  });

  it('agents ls keeps LAST SEEN current as deltas arrive', async () => {
    const before = Date.now();
    const s = openRawStream(ctl.controller.address, stateCreds(agents[2]!.dir));
    await s.next('welcome');
    s.send({ msg: { case: 'deltas', value: { deltas: [created(1, '/w/c')] } } });
    await s.next('ack');
    const seenAtAck = (JSON.parse((await cli('agents', 'ls', '--json')).stdout) as { id: string; lastSeenAt: string }[]).find((a) => a.id === agents[2]!.id)!.lastSeenAt;
    skew += 60_000;
    s.send({ msg: { case: 'deltas', value: { deltas: [created(2, '/w/d')] } } });
    await s.next('ack');
    s.close();
    const seenLater = (JSON.parse((await cli('agents', 'ls', '--json')).stdout) as { id: string; lastSeenAt: string }[]).find((a) => a.id === agents[2]!.id)!.lastSeenAt;
    assert.ok(Date.parse(seenAtAck) >= before);
    assert.ok(Date.parse(seenLater) >= Date.parse(seenAtAck) + 60_000, `${seenLater} a minute after ${seenAtAck}: the later delivery`);
  });
});

describe('vigil-agent for a new operator', { timeout: 60_000 }, () => {
  const { root, remove } = tempRoot('vigil-agent-cli-');
  after(() => remove());

  it('says in one line that a state directory is not enrolled, without a stack', async () => {
    const r = await runCli(BIN.agent, ['run', '--state-dir', join(root, 'never-enrolled')], { ...process.env, VIGIL_LOG_LEVEL: 'info' });
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /enrol/);
    assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
  });

  it('scan says on stderr when it lists only some of the changes', async () => {
    const tree = join(root, 'tree');
    mkdirSync(tree);
    const state = join(root, 'scan-state');
    await runCli(BIN.agent, ['scan', tree, '--state-dir', state], process.env);
    for (let i = 0; i < 60; i++) writeFileSync(join(tree, `f${i}`), `${i}`);
    const r = await runCli(BIN.agent, ['scan', tree, '--state-dir', state], process.env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n').length, 50);
    assert.match(r.stderr, /50 of 60 changes listed/);
  });
});
