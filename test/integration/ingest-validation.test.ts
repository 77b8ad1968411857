/**
 * Bad input on the agent stream (docs/delivery.md, "Refused deltas"; docs/security.md): deltas
 * refused one by one for their content and accounted for, seqs that cannot be accounted for, a
 * path leaving the policy, and messages too large to decode without stalling other agents.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { join } from 'node:path';
import { Code } from '@connectrpc/connect';
import type { VigilHome } from '../../controller/home.js';
import type { RawStream } from '../support/raw-agent.js';
import { openRawStream, stateCreds } from '../support/raw-agent.js';
import { enrolTestAgent, makeHome, startTestController, tempRoot, testDatabaseEnv, type TestController } from '../support/controllers.js';
import { runCli, waitFor } from '../support/processes.js';
import { fileURLToPath } from 'node:url';

/** test/fixtures/hostile-sender.ts: one message of N tiny deltas on an agent stream, then how it ended. */
const HOSTILE_SENDER = fileURLToPath(new URL('../fixtures/hostile-sender.js', import.meta.url));

const CREATED = 1;
const REFRESHED = 5;
const REGULAR = 1;
const state = (n: number) => ({ type: REGULAR, size: BigInt(n), mode: 0o100644, sha256: Buffer.alloc(32, n) });
const created = (seq: number, path: string | Buffer) => ({ seq: BigInt(seq), path: typeof path === 'string' ? Buffer.from(path) : path, kind: CREATED, state: state(seq), source: 1 });

describe('ingest input validation', { timeout: 120_000 }, () => {
  const { root, remove } = tempRoot('vigil-ingest-');
  let home: VigilHome;
  let ctl: TestController;
  let drop: () => Promise<void>;
  let n = 0;
  const enrolNew = () => enrolTestAgent(ctl, join(root, `agent-${n++}`));
  const open = async (dir: string): Promise<RawStream> => {
    const s = openRawStream(ctl.controller.address, stateCreds(dir));
    await s.next('welcome');
    return s;
  };
  const ackOf = async (s: RawStream) => {
    const m = await s.next('ack');
    assert.ok(m.msg.case === 'ack');
    return m.msg.value;
  };
  const paths = async (agentId: string) => (await ctl.admin.listEvents({ agentId, limit: 1000 })).events.map((e) => Buffer.from(e.delta!.path).toString('latin1'));

  before(async () => {
    home = await makeHome(root, 'home');
    const db = await testDatabaseEnv();
    drop = db.drop;
    ctl = await startTestController(home, { env: db.env });
  });
  after(async () => {
    await ctl?.stop();
    await drop?.();
    remove();
  });

  it('refuses an invalid delta alone: the valid ones around it are stored, it is accounted for, acked and shown', async () => {
    const a = await enrolNew();
    const s = await open(a.dir);
    try {
      s.send({ msg: { case: 'deltas', value: { deltas: [created(1, '/w/a'), created(2, 'w/relative'), created(3, '/w/c')] } } });
      const first = await ackOf(s);
      assert.equal(first.upToSeq, 3n, 'the whole batch is acked: nothing to resend');
      assert.deepEqual(first.refused.map((r) => [Number(r.seq), r.field, r.code]), [[2, 'path', 'INVALID_ARGUMENT']]);
      assert.match(first.refused[0]!.reason, /not absolute/);
      s.send({ msg: { case: 'deltas', value: { deltas: [created(4, '/w/d')] } } });
      assert.equal((await ackOf(s)).upToSeq, 4n, 'the stream goes on');
      assert.deepEqual((await paths(a.id)).sort(), ['/w/a', '/w/c', '/w/d']);
      const shown = await ctl.admin.getAgent({ agentId: a.id });
      assert.equal(shown.agent!.refusedCount, 1n);
      assert.equal(Number(shown.eventsStored) + Number(shown.agent!.refreshedCount) + Number(shown.agent!.refusedCount), Number(shown.agent!.lastSeq), 'every seq accounted for');
      assert.deepEqual(shown.refused.map((r) => [Number(r.seq), r.field, Buffer.from(r.path).toString(), r.kind]), [[2, 'path', 'w/relative', 'created']]);
      // A resend of the refused delta (a lost ack) is stored zero times and refused once.
      s.send({ msg: { case: 'deltas', value: { deltas: [created(2, 'w/relative')] } } });
      assert.equal((await ackOf(s)).refused.length, 0);
      assert.equal((await ctl.admin.getAgent({ agentId: a.id })).agent!.refusedCount, 1n);
    } finally {
      s.close();
    }
  });

  it('refuses NUL bytes, relative paths, dot segments, empty segments, trailing slashes and paths over 4,096 bytes, naming seq and field', async () => {
    const a = await enrolNew();
    const s = await open(a.dir);
    const bad: [string, Buffer, RegExp][] = [
      ['NUL', Buffer.from('/w/a\0b'), /NUL/],
      ['relative', Buffer.from('etc/passwd'), /not absolute/],
      ['dot-dot', Buffer.from('/w/../etc/shadow'), /"\.\." segment/],
      ['dot', Buffer.from('/w/./x'), /"\." segment/],
      ['double slash', Buffer.from('/w//x'), /empty segment/],
      ['trailing slash', Buffer.from('/w/x/'), /ends with a slash/],
      ['too long', Buffer.from(`/${'x'.repeat(4096)}`), /more than 4096/],
      ['empty', Buffer.alloc(0), /empty/],
    ];
    try {
      let seq = 0;
      for (const [what, path, reason] of bad) {
        seq++;
        s.send({ msg: { case: 'deltas', value: { deltas: [created(seq, path)] } } });
        const ack = await ackOf(s);
        assert.equal(ack.upToSeq, BigInt(seq), what);
        assert.equal(ack.refused.length, 1, what);
        assert.equal(ack.refused[0]!.seq, BigInt(seq), what);
        assert.equal(ack.refused[0]!.field, 'path', what);
        assert.match(ack.refused[0]!.reason, reason, what);
      }
      // Odd but valid: non-UTF-8 bytes, a name that starts with dots, the root itself.
      const odd = [Buffer.from([0x2f, 0x77, 0x2f, 0xff, 0xfe]), Buffer.from('/w/..hidden'), Buffer.from('/')];
      s.send({ msg: { case: 'deltas', value: { deltas: odd.map((p, i) => created(seq + 1 + i, p)) } } });
      const ack = await ackOf(s);
      assert.equal(ack.refused.length, 0);
      assert.deepEqual((await paths(a.id)).sort(), odd.map((p) => p.toString('latin1')).sort(), 'only the valid paths are stored');
    } finally {
      s.close();
    }
  });

  it('refuses states and times Postgres could not hold with the delta alone, a duplicate seq with the message, and still takes a deletion of an odd stored path', async () => {
    const a = await enrolNew();
    const s = await open(a.dir);
    try {
      const bad: [string, Record<string, unknown>, string][] = [
        ['mode', { state: { ...state(1), mode: 2 ** 32 - 1 } }, 'state'],
        ['nlink', { state: { ...state(1), nlink: 2 ** 31 } }, 'state'],
        ['size', { state: { ...state(1), size: 2n ** 63n } }, 'state'],
        ['error with NUL', { state: { ...state(1), error: 'EIO\0x' } }, 'state'],
        ['detected in year 20000', { detectedAt: { seconds: 569_000_000_000n, nanos: 0 } }, 'detected_at'],
      ];
      let seq = 0;
      for (const [what, override, field] of bad) {
        seq++;
        s.send({ msg: { case: 'deltas', value: { deltas: [{ ...created(seq, `/w/${seq}`), ...override }] } } });
        const ack = await ackOf(s);
        assert.deepEqual(ack.refused.map((r) => [Number(r.seq), r.field]), [[seq, field]], what);
      }
      // A deletion may name a path no longer accepted for a new state: rows kept before the checks can go.
      seq++;
      s.send({ msg: { case: 'deltas', value: { deltas: [{ seq: BigInt(seq), path: Buffer.from('/w//legacy'), kind: 3, source: 1 }] } } });
      assert.equal((await ackOf(s)).refused.length, 0);
      assert.equal((await ctl.admin.listEvents({ agentId: a.id })).events.length, 1, 'only the deletion is history');
    } finally {
      s.close();
    }
    const dup = await open(a.dir);
    dup.send({ msg: { case: 'deltas', value: { deltas: [created(100, '/w/x'), created(100, 'relative')] } } });
    const ended = await dup.ended;
    dup.close();
    assert.equal(ended.code, Code.InvalidArgument);
    assert.match(ended.details ?? '', /same seq twice/);
  });

  it('refuses a seq that cannot be accounted for (2^63, 2^64-1, 0) as INVALID_ARGUMENT, never INTERNAL, and shows delivery blocked until a good batch', async () => {
    const a = await enrolNew();
    for (const seq of [2n ** 63n, 2n ** 64n - 1n, 0n]) {
      const s = await open(a.dir);
      s.send({ msg: { case: 'deltas', value: { deltas: [{ ...created(1, '/w/a'), seq }] } } });
      const ended = await s.ended;
      s.close();
      assert.equal(ended.code, Code.InvalidArgument, `seq ${seq}: ${ended.message}`);
      assert.match(ended.details ?? '', /seq .* out of range/);
    }
    const blocked = (await ctl.admin.getAgent({ agentId: a.id })).agent!.deliveryBlocked;
    assert.equal(blocked?.seq, 1n, 'delivery blocked at the first seq not committed');
    assert.match(blocked?.reason ?? '', /out of range/);
    const s = await open(a.dir);
    try {
      s.send({ msg: { case: 'deltas', value: { deltas: [created(1, '/w/a')] } } });
      await ackOf(s);
      assert.equal((await ctl.admin.getAgent({ agentId: a.id })).agent!.deliveryBlocked, undefined, 'a committed batch clears it');
    } finally {
      s.close();
    }
  });

  it('takes a refreshed delta without a state: the path leaves the current state, with no history row', async () => {
    const a = await enrolNew();
    const s = await open(a.dir);
    try {
      s.send({ msg: { case: 'deltas', value: { deltas: [created(1, '/w/kept'), created(2, '/w/dropped')] } } });
      await ackOf(s);
      s.send({ msg: { case: 'deltas', value: { deltas: [{ seq: 3n, path: Buffer.from('/w/dropped'), kind: REFRESHED, source: 2 }] } } });
      const ack = await ackOf(s);
      assert.equal(ack.upToSeq, 3n);
      assert.equal(ack.refused.length, 0);
      const files = (await ctl.admin.listFiles({ agentId: a.id })).files.map((f) => Buffer.from(f.path).toString());
      assert.deepEqual(files, ['/w/kept']);
      const shown = await ctl.admin.getAgent({ agentId: a.id });
      assert.deepEqual([Number(shown.eventsStored), Number(shown.agent!.refreshedCount), Number(shown.agent!.lastSeq)], [2, 1, 3]);
    } finally {
      s.close();
    }
  });

  it('takes a hello and a failure reason with NUL bytes (replaced), and refuses a command id that cannot be one, as INVALID_ARGUMENT', async () => {
    const a = await enrolNew();
    const s = await open(a.dir);
    try {
      s.send({ msg: { case: 'hello', value: { hostname: 'host\0evil', agentVersion: 'x', policyVersion: 0n } } });
      const sent = await ctl.admin.rescan({ agentId: a.id });
      const commandId = sent.targets[0]!.commandId;
      await s.next('command');
      s.send({ msg: { case: 'scanReport', value: { commandId, policyVersion: 0n, summary: { startedAt: { seconds: 1n }, finishedAt: { seconds: 2n } }, failure: 'disk\0gone' } } });
      await waitFor('the failure recorded', async () => (await ctl.admin.getCommands({ ids: [commandId] })).commands[0]?.state === 'failed');
      assert.equal((await ctl.admin.getCommands({ ids: [commandId] })).commands[0]!.failure, 'disk\uFFFDgone');
      await waitFor('the hostname recorded', async () => (await ctl.admin.getAgent({ agentId: a.id })).agent?.hostname === 'host\uFFFDevil');
      s.send({ msg: { case: 'scanReport', value: { commandId: 'x\0y', policyVersion: 0n, summary: { startedAt: { seconds: 1n }, finishedAt: { seconds: 2n } } } } });
      const ended = await s.ended;
      assert.equal(ended.code, Code.InvalidArgument, ended.message);
      assert.match(ended.details ?? '', /command_id is not a command id/);
    } finally {
      s.close();
    }
  });

  it("refuses a message too large to decode quickly, while another agent's acks stay under 500 ms", async (t) => {
    const hostile = await enrolNew();
    const quiet = await enrolNew();
    const q = await open(quiet.dir);
    const latencies: number[] = [];
    let stop = false;
    const pinger = (async () => {
      for (let seq = 1; !stop; seq++) {
        const t0 = performance.now();
        q.send({ msg: { case: 'deltas', value: { deltas: [created(seq, `/q/${seq}`)] } } });
        await ackOf(q);
        latencies.push(performance.now() - t0);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      await waitFor('the quiet agent acked', () => latencies.length >= 3);
      // A million deltas of a few bytes (about 10 MB, under the admin API's 16 MiB), and a message
      // just under the agent stream's 256 KiB cap packed with 24,000 of the smallest deltas. Sent
      // from a process of their own: building them here would stall this test's own loop.
      for (const [what, count, code] of [
        ['a million deltas', 1_000_000, Code.ResourceExhausted],
        ['just under the cap', 24_000, Code.InvalidArgument],
      ] as const) {
        const before = latencies.length;
        const res = await runCli(HOSTILE_SENDER, [ctl.controller.address, hostile.dir, String(count)], process.env);
        assert.equal(res.code, 0, res.stderr);
        const ended = JSON.parse(res.stdout) as { code: number; message: string };
        assert.equal(ended.code, code, `${what}: ${ended.message}`);
        await waitFor('more acks of the quiet agent', () => latencies.length >= before + 5, 20_000, 20);
      }
    } finally {
      stop = true;
      await pinger.catch(() => undefined);
      q.close();
    }
    const worst = Math.max(...latencies);
    t.diagnostic(`quiet agent: ${latencies.length} acks, worst ${worst.toFixed(0)} ms`);
    assert.ok(worst < 500, `the other agent's acks stayed under 500 ms (worst ${worst.toFixed(0)} ms)`);
    assert.equal((await ctl.admin.listEvents({ agentId: hostile.id })).events.length, 0, 'nothing of the hostile messages stored');
  });
});
