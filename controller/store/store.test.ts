import { DEFAULT_LIMITS, defineRule } from '../../core/policy-schema.js';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { generateToken } from '../../pki/index.js';
import { displayPath, type FileDelta, type FileState } from '../../core/model.js';
import { addEntry, emptyRange, entryDigest, MAX_POSITION, MIN_POSITION, pathPosition, splitRange } from '../../core/sync-digest.js';
import { testDatabaseKinds, type TestDatabase } from '../../test/support/databases.js';
import { encodeXattrs } from '../../core/xattr-encoding.js';
import { toAlert } from '../alerts/outbox.js';
import {
  createAgentStore,
  createAlertStore,
  createCommandStore,
  createEventStore,
  createPolicyStore,
  createStateStore,
  createSyncStore,
  createTokenStore,
  migrate,
  type Clock,
  type SqlQueryable,
} from './index.js';
import { buf } from './sql.js';

/** A SqlQueryable that counts the statements sent through it. */
function counting(db: SqlQueryable): SqlQueryable & { statements: number } {
  const c = {
    statements: 0,
    query: <R extends object>(text: string, params?: readonly unknown[]) => {
      c.statements++;
      return db.query<R>(text, params);
    },
  };
  return c;
}

function delta(seq: number, path: string, kind: FileDelta['kind'] = 'created'): FileDelta {
  return {
    seq,
    path: Buffer.from(path),
    kind,
    state:
      kind === 'deleted'
        ? null
        : {
            type: 'regular',
            size: seq,
            mode: 0o100644,
            uid: 1000,
            gid: 1000,
            mtimeNs: 1_700_000_000_123_456_789n,
            ctimeNs: 1_700_000_000_123_456_789n,
            inode: 2n ** 40n + 7n,
            nlink: 1,
            sha256: Buffer.alloc(32, seq),
            symlinkTarget: null,
            error: null,
          },
    detectedAt: new Date(1_700_000_000_000 + seq),
    source: 'realtime',
  };
}

// One conformance suite, run against every store implementation.
for (const kind of testDatabaseKinds()) {
  describe(`stores on ${kind.name}`, () => {
    let db: TestDatabase;
    let now = new Date('2026-01-01T00:00:00Z');
    const clock: Clock = () => now;
    before(async () => {
      db = await kind.open();
    });
    after(async () => {
      await db.drop();
    });

    it('migrations are idempotent', async () => {
      assert.deepEqual(await migrate(db.sql), []);
    });

    it('tokens: a use limit holds under concurrent consumers', async () => {
      const tokens = createTokenStore(db.sql, clock);
      const token = generateToken();
      await tokens.create({ token, ttlMs: 3600_000, uses: 5, createdBy: 'test' });
      const results = await Promise.all(
        Array.from({ length: 20 }, () => db.sql.transaction((tx) => createTokenStore(tx, clock).consume(token))),
      );
      assert.equal(results.filter((r) => r.ok).length, 5);
      assert.ok(results.filter((r) => !r.ok).every((r) => !r.ok && r.reason === 'used_up'));
    });

    it('tokens: wrong secret, expiry, revocation and unknown ids are refused distinctly', async () => {
      const tokens = createTokenStore(db.sql, clock);
      const token = generateToken();
      await tokens.create({ token, ttlMs: 60_000, uses: 3, createdBy: 'test' });
      const consume = (t = token) => db.sql.transaction((tx) => createTokenStore(tx, clock).consume(t));
      assert.deepEqual(await consume({ id: token.id, secret: generateToken().secret }), { ok: false, reason: 'bad_secret' });
      assert.deepEqual(await consume(generateToken()), { ok: false, reason: 'unknown' });
      const saved = now;
      now = new Date(now.getTime() + 61_000);
      assert.deepEqual(await consume(), { ok: false, reason: 'expired' });
      now = saved;
      assert.ok(await tokens.revoke(token.id));
      assert.deepEqual(await consume(), { ok: false, reason: 'revoked' });
      const listed = await tokens.list();
      assert.ok(listed.some((t) => t.id === token.id && t.uses === 0));
    });

    it('events: a resent batch is stored once; state follows the last delta', async () => {
      const agents = createAgentStore(db.sql, clock);
      await agents.create({ id: 'agent-1', hostname: 'h', tokenId: 't', labels: {} });
      const events = createEventStore(db.sql, clock);
      const batch = [delta(1, '/etc/a'), delta(2, '/etc/b'), delta(3, '/etc/a', 'modified')];
      const first = await events.ingest('agent-1', batch, (p) => (p.toString() === '/etc/b' ? 'etc' : null));
      assert.equal(first.committedSeq, 3);
      assert.equal(first.stored.length, 3);
      assert.deepEqual(first.alerts.map((a) => a.seq), [2]);
      const again = await events.ingest('agent-1', [...batch, delta(4, '/etc/b', 'deleted')], () => null);
      assert.equal(again.committedSeq, 4);
      assert.deepEqual(again.stored.map((d) => d.seq), [4]);
      const listed = (await events.list({ agentId: 'agent-1', limit: 100 })).events;
      assert.deepEqual(listed.map((e) => e.delta.seq), [1, 2, 3, 4]);
      const e3 = listed[2]!.delta;
      assert.equal(e3.kind, 'modified');
      assert.equal(e3.state?.mtimeNs, 1_700_000_000_123_456_789n, 'nanoseconds survive');
      assert.equal(e3.state?.inode, 2n ** 40n + 7n);
      assert.deepEqual(e3.state?.sha256, Buffer.alloc(32, 3));
      const state = await db.sql.query('select path_text, size from file_state where agent_id = $1 order by path_text', ['agent-1']);
      assert.deepEqual(state.map((r) => [r.path_text, Number(r.size)]), [['/etc/a', 3]]);
      assert.equal((await agents.get('agent-1'))?.lastSeq, 4);
    });

    it('events: refreshed deltas move the current state only, and every seq is accounted for', async () => {
      const agents = createAgentStore(db.sql, clock);
      await agents.create({ id: 'agent-r', hostname: 'h', tokenId: 't', labels: {} });
      const events = createEventStore(db.sql, clock);
      const grown = { ...delta(2, '/var/log/app.log', 'refreshed'), state: { ...delta(1, '/var/log/app.log').state!, size: 999 } };
      const dropped = { ...delta(4, '/old/x', 'refreshed'), state: null };
      const batch = [delta(1, '/var/log/app.log'), grown, delta(3, '/old/x'), dropped, delta(5, '/etc/y')];
      const res = await events.ingest('agent-r', batch, () => 'any-rule');
      assert.equal(res.committedSeq, 5);
      assert.deepEqual(res.stored.map((d) => d.seq), [1, 3, 5], 'refreshed deltas are not history');
      assert.deepEqual(res.alerts.map((a) => a.seq), [1, 3, 5], 'and never alert');
      const state = await db.sql.query('select path_text, size from file_state where agent_id = $1 order by path_text', ['agent-r']);
      assert.deepEqual(state.map((r) => [r.path_text, Number(r.size)]), [['/etc/y', 5], ['/var/log/app.log', 999]]);
      // A resend (lost ack) changes nothing, and the committed seq survives without a history row at it.
      const again = await events.ingest('agent-r', [{ ...grown, state: { ...grown.state, size: 1 } }, { ...dropped }], () => null);
      assert.equal(again.committedSeq, 5);
      assert.equal(again.stored.length, 0);
      const more = await events.ingest('agent-r', [{ ...grown, seq: 6, state: { ...grown.state, size: 1000 } }], () => null);
      assert.equal(more.committedSeq, 6);
      assert.equal(await events.committedSeq('agent-r'), 6);
      const rec = (await agents.get('agent-r'))!;
      assert.equal(rec.lastSeq, 6);
      assert.equal(rec.refreshedCount, 3);
      const history = (await events.list({ agentId: 'agent-r', limit: 100 })).events;
      assert.equal(history.length + rec.refreshedCount, rec.lastSeq, 'history rows + refreshed = committed seq');
    });

    it('events: a group commit stores several agents at once, exactly as one ingest per agent would', async () => {
      const agents = createAgentStore(db.sql, clock);
      for (const id of ['g-1', 'g-2', 'g-3', 'g-4', 's-1', 's-2']) await agents.create({ id, hostname: id, tokenId: 't', labels: {} });
      await agents.revoke('g-3', 'test');
      const events = createEventStore(db.sql, clock);
      const refusal = { seq: 3, field: 'path', reason: 'relative path', path: Buffer.from('etc/x'), kind: 'created' };
      // Per agent: creations, the same path twice (state follows the last), a deletion, a refusal.
      const batchFor = () => [delta(1, '/etc/a'), delta(2, '/etc/b'), delta(4, '/etc/a', 'modified'), delta(5, '/etc/b', 'deleted'), delta(6, '/etc/c')];
      const rule = (p: Buffer) => (p.toString() === '/etc/a' ? 'etc' : null);
      // Reference: g-1 and g-2's twins s-1 and s-2 through one ingest each.
      const single = [await events.ingest('s-1', batchFor(), rule, [refusal]), await events.ingest('s-2', batchFor().slice(0, 2), rule)];
      const group = await events.ingestGroup([
        { agentId: 'g-1', deltas: batchFor(), refusals: [refusal], alertRuleFor: rule },
        { agentId: 'g-2', deltas: batchFor().slice(0, 2), refusals: [], alertRuleFor: rule },
        { agentId: 'g-3', deltas: batchFor(), refusals: [], alertRuleFor: rule },
      ]);
      assert.equal(group.length, 3);
      const shape = (r: (typeof group)[number]) => ({ ...r!, alerts: r!.alerts.map((a) => [a.seq, a.rule]) });
      assert.deepEqual(shape(group[0]!), shape(single[0]!));
      assert.deepEqual(shape(group[1]!), shape(single[1]!));
      assert.deepEqual(group[0]!.stored.map((d) => d.seq), [1, 2, 4, 5, 6]);
      assert.deepEqual(group[0]!.alerts.map((a) => a.seq), [1, 4]);
      assert.deepEqual(group[0]!.refused.map((r) => r.seq), [3]);
      assert.equal(group[0]!.committedSeq, 6);
      assert.deepEqual(group[2], { revoked: true, committedSeq: 0, stored: [], alerts: [], refused: [] }, 'a revoked agent stores nothing');
      assert.equal(await events.countFor('g-3'), 0);
      const stateOf = async (id: string) => (await db.sql.query('select path_text, size from file_state where agent_id = $1 order by path_text', [id])).map((r) => [r.path_text, Number(r.size)]);
      assert.deepEqual(await stateOf('g-1'), [['/etc/a', 4], ['/etc/c', 6]]);
      assert.deepEqual(await stateOf('g-1'), await stateOf('s-1'));
      // A resend in a later group is skipped, next to an agent's new deltas; counters move once.
      const again = await events.ingestGroup([
        { agentId: 'g-1', deltas: batchFor(), refusals: [refusal], alertRuleFor: rule },
        { agentId: 'g-2', deltas: [...batchFor().slice(0, 2), delta(3, '/etc/d')], refusals: [], alertRuleFor: rule },
      ]);
      assert.deepEqual(again.map((r) => [r!.committedSeq, r!.stored.length, r!.alerts.length, r!.refused.length]), [[6, 0, 0, 0], [3, 1, 0, 0]]);
      const g1 = (await agents.get('g-1'))!;
      assert.equal(g1.lastSeq, 6);
      assert.equal(g1.refusedCount, 1);
      assert.equal((await events.countFor('g-1')) + g1.refusedCount, g1.lastSeq, 'every seq accounted for');
      await assert.rejects(events.ingestGroup([{ agentId: 'g-4', deltas: [], refusals: [], alertRuleFor: rule }, { agentId: 'g-4', deltas: [], refusals: [], alertRuleFor: rule }]), /one batch per agent/);
    });

    it('events: a group commit leaves out an agent whose row another transaction holds, and stores the rest', { skip: kind.name === 'pglite' ? 'one connection: no other transaction can hold a row' : false }, async () => {
      const agents = createAgentStore(db.sql, clock);
      for (const id of ['l-1', 'l-2']) await agents.create({ id, hostname: id, tokenId: 't', labels: {} });
      const events = createEventStore(db.sql, clock);
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let holding!: () => void;
      const isHeld = new Promise<void>((r) => (holding = r));
      const holder = db.sql.transaction(async (tx) => {
        await tx.query("select 1 from agents where id = 'l-1' for update");
        holding();
        await held;
      });
      await isHeld;
      const res = await events.ingestGroup([
        { agentId: 'l-1', deltas: [delta(1, '/a')], refusals: [], alertRuleFor: () => null },
        { agentId: 'l-2', deltas: [delta(1, '/a')], refusals: [], alertRuleFor: () => null },
      ]);
      assert.equal(res[0], null, 'left out, not waited for');
      assert.equal(res[1]?.committedSeq, 1);
      release();
      await holder;
      assert.equal(await events.countFor('l-1'), 0);
      const retry = await events.ingestGroup([{ agentId: 'l-1', deltas: [delta(1, '/a')], refusals: [], alertRuleFor: () => null }]);
      assert.equal(retry[0]?.committedSeq, 1, 'offered again once the row is free');
    });

    it('events and current state: a 4,095-byte path of random names is stored, listed in order, reconciled and deleted', async () => {
      const agents = createAgentStore(db.sql, clock);
      await agents.create({ id: 'long-1', hostname: 'h', tokenId: 't', labels: {} });
      const events = createEventStore(db.sql, clock);
      // Random hex does not compress: more than a btree entry may hold (2,704 bytes).
      const long = (tail: string) => {
        let p = '/deep';
        while (p.length < 4095 - 1 - tail.length) p += `/${randomBytes(60).toString('hex').slice(0, Math.min(120, 4095 - 2 - tail.length - p.length))}`;
        return `${p}/${tail}`.slice(0, 4095);
      };
      const a = long('a');
      const b = `${a.slice(0, -1)}b`; // shares all but its last byte with a: the order index ties
      assert.equal(Buffer.byteLength(a), 4095);
      const res = await events.ingest('long-1', [delta(1, b), delta(2, a), delta(3, '/etc/short'), delta(4, a, 'modified')], () => null);
      assert.equal(res.committedSeq, 4);
      const files = createStateStore(db.sql);
      const all = await files.page('long-1', { limit: 10 });
      assert.deepEqual(all.map((f) => f.path.toString()), [a, b, '/etc/short']);
      assert.equal(all[0]!.state.size, 4, 'the long path\'s state followed its last delta');
      assert.deepEqual((await files.page('long-1', { after: Buffer.from(a), limit: 10 })).map((f) => f.path.toString()), [b, '/etc/short'], 'keyset paging past a long path');
      const sync = createSyncStore(db.sql);
      const [whole] = await sync.rangeDigests('long-1', [[MIN_POSITION, MAX_POSITION]]);
      assert.equal(whole!.count, 3);
      await events.ingest('long-1', [delta(5, a, 'deleted')], () => null);
      assert.deepEqual((await files.page('long-1', { limit: 10 })).map((f) => f.path.toString()), [b, '/etc/short']);
      assert.equal((await events.list({ agentId: 'long-1', limit: 10 })).events.length, 5);
    });

    it('events: non-UTF-8 paths round-trip as bytes and filter by glob', async () => {
      const events = createEventStore(db.sql, clock);
      const odd = Buffer.concat([Buffer.from('/srv/x\n'), Buffer.from([0xff, 0xfe]), Buffer.from('.txt')]);
      const d = { ...delta(1, 'x'), path: odd };
      await events.ingest('agent-2', [d, delta(2, '/srv/y.log')], () => null);
      const all = (await events.list({ agentId: 'agent-2', limit: 10 })).events;
      assert.deepEqual(all[0]!.delta.path, odd);
      const txt = (await events.list({ agentId: 'agent-2', pathGlob: '/srv/*.log', limit: 10 })).events;
      assert.deepEqual(txt.map((e) => e.delta.seq), [2]);
    });

    it('events and current state: odd paths, extreme numbers and every optional column round-trip exactly through the binary parameters, on either statement path', async () => {
      const agents = createAgentStore(db.sql, clock);
      const events = createEventStore(db.sql, clock);
      const long = Buffer.concat([Buffer.from('/'), Buffer.alloc(4094, 0xe9)]); // 4,095 bytes, none of them UTF-8 on its own
      const paths = [
        Buffer.concat([Buffer.from('/srv/x\n'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('.txt')]), // newline, not UTF-8
        long,
        Buffer.from('/srv/www/<script>alert("x")</script>&amp;\'; drop table agents; --'),
        Buffer.from('/srv/back\\slash\ttab\u007f\u0001'),
        Buffer.from('/home/zoë/文件/🙂.txt'),
        Buffer.from('/srv/{a,"b"}/NULL'), // array-literal syntax, the word NULL
      ];
      const base = delta(1, '/x').state!;
      const states: FileState[] = [
        { ...base, size: Number.MAX_SAFE_INTEGER, mode: 2 ** 31 - 1, uid: 4294967294, gid: 0, mtimeNs: -(2n ** 63n), ctimeNs: 2n ** 63n - 1n, inode: 2n ** 64n - 1n, nlink: 2 ** 31 - 1 },
        { ...base, type: 'symlink', sha256: null, symlinkTarget: Buffer.from([0x2e, 0x00, 0xff, 0x2f, 0x00]), error: null }, // NUL bytes in a bytea
        { ...base, sha256: null, error: 'EACCES: ünïcödé ✓ "quoted" {braces} \\ NULL', digest: null },
        { ...base, sha256: null, digest: { algorithm: 'sha512', value: Buffer.alloc(64, 0) }, xattrs: Buffer.alloc(32, 0), attrValues: Buffer.from([0, 0, 0, 1, 0x61, 0, 0, 0, 0]) },
        { ...base, size: 0, mode: 0, uid: 0, gid: 4294967295, mtimeNs: 0n, ctimeNs: -1n, inode: 0n, nlink: 0, attrValues: Buffer.alloc(0), xattrs: null },
        base,
      ];
      const times = [new Date(0), new Date(253_402_300_799_999), new Date(946_684_799_999), new Date(946_684_800_001), new Date(-0), new Date(1_700_000_000_123)];
      const batch = (from: number) => paths.map((path, i): FileDelta => ({ seq: from + i, path, kind: 'modified', state: states[i]!, detectedAt: times[i]!, source: 'scan' }));
      const check = async (agentId: string, deltas: FileDelta[]) => {
        const listed = (await events.list({ agentId, limit: 100 })).events.map((e) => e.delta).sort((a, b) => a.seq - b.seq);
        assert.deepEqual(listed.map((d) => d.seq), deltas.map((d) => d.seq));
        for (const [i, d] of deltas.entries()) {
          assert.deepEqual(listed[i]!.path, d.path, `path ${i}`);
          assert.equal(listed[i]!.detectedAt.getTime(), d.detectedAt.getTime(), `detected_at ${i}`);
          assert.deepEqual(listed[i]!.state, { ...d.state, digest: d.state!.digest ?? null, xattrs: d.state!.xattrs ?? null, attrValues: d.state!.attrValues ?? null }, `state ${i}`);
        }
        const rows = await db.sql.query('select path, path_text, path_position::text as pos, entry_digest::text as dig from file_state where agent_id = $1', [agentId]);
        assert.equal(rows.length, paths.length);
        const files = await createStateStore(db.sql).page(agentId, { limit: 100 });
        for (const p of paths) {
          const d = deltas.find((x) => x.path.equals(p))!;
          const r = rows.find((x) => buf(x.path)!.equals(p))!;
          assert.equal(r.path_text, displayPath(p), 'path_text as displayPath shows it');
          assert.equal(BigInt(r.pos as string), pathPosition(p));
          assert.equal(BigInt(r.dig as string), entryDigest(p, d.state!), 'the stored entry digest is the one the agent computes');
          const f = files.find((x) => x.path.equals(p))!;
          assert.equal(entryDigest(f.path, f.state), entryDigest(p, d.state!), 'and the state read back digests alike');
        }
      };
      // One statement for history and state (every path once) ...
      await agents.create({ id: 'odd-1', hostname: 'h', tokenId: 't', labels: {} });
      const one = batch(1);
      assert.equal((await events.ingest('odd-1', one, () => null)).stored.length, paths.length);
      await check('odd-1', one);
      // ... and the two-statement path (a path twice in the group: its state follows the later delta).
      await agents.create({ id: 'odd-2', hostname: 'h', tokenId: 't', labels: {} });
      const again: FileDelta = { seq: 7, path: paths[0]!, kind: 'modified', state: states[5]!, detectedAt: times[5]!, source: 'realtime' };
      assert.equal((await events.ingest('odd-2', [...batch(1), again], () => null)).stored.length, 7);
      assert.equal((await events.list({ agentId: 'odd-2', limit: 100 })).events.length, 7);
      const files = await createStateStore(db.sql).page('odd-2', { limit: 100 });
      assert.equal(files.length, paths.length);
      const first = files.find((f) => f.path.equals(paths[0]!))!;
      assert.equal(first.updatedSeq, 7);
      assert.equal(entryDigest(paths[0]!, first.state), entryDigest(paths[0]!, states[5]!));
      const [row] = await db.sql.query<{ dig: string }>('select entry_digest::text as dig from file_state where agent_id = $1 and path = $2', ['odd-2', paths[0]]);
      assert.equal(BigInt(row!.dig), entryDigest(paths[0]!, states[5]!));
      for (const f of files.filter((x) => !x.path.equals(paths[0]!))) assert.equal(entryDigest(f.path, f.state), entryDigest(f.path, states[paths.findIndex((p) => p.equals(f.path))]!));
      // A refused delta's path keeps its bytes, NUL and all.
      const nul = Buffer.from([0x2f, 0x61, 0x00, 0x62, 0xff]);
      await events.ingest('odd-1', [], () => null, [{ seq: 7, field: 'path', reason: 'contains a NUL byte — «refused»', path: nul, kind: 'created' }]);
      const refused = await events.refusals('odd-1', 10);
      assert.deepEqual(refused.recent.map((r) => [r.seq, r.path, r.reason, r.kind]), [[7, nul, 'contains a NUL byte — «refused»', 'created']]);
    });

    it('events: a resend the seq check cannot see (an agent without a row) is skipped by the key and moves no state, on either statement path', async () => {
      const events = createEventStore(db.sql, clock);
      const sized = (d: FileDelta, size: number): FileDelta => ({ ...d, state: { ...d.state!, size } });
      await events.ingest('rowless-1', [delta(1, '/r/a'), delta(2, '/r/b')], () => 'rule');
      // One statement: seq 1 again with another state, seq 3 new.
      const one = await events.ingest('rowless-1', [sized(delta(1, '/r/a'), 99), delta(3, '/r/c')], () => 'rule');
      assert.deepEqual(one.stored.map((d) => d.seq), [3]);
      assert.deepEqual(one.alerts.map((a) => a.seq), [3]);
      // Two statements (a path twice): seq 2 again, then seq 4 and 5 on one path.
      const two = await events.ingest('rowless-1', [sized(delta(2, '/r/b'), 98), sized(delta(4, '/r/d'), 4), sized(delta(5, '/r/d', 'modified'), 5)], () => null);
      assert.deepEqual(two.stored.map((d) => d.seq), [4, 5]);
      const state = await db.sql.query('select path_text, size, updated_seq from file_state where agent_id = $1 order by path_text', ['rowless-1']);
      assert.deepEqual(state.map((r) => [r.path_text, Number(r.size), Number(r.updated_seq)]), [['/r/a', 1, 1], ['/r/b', 2, 2], ['/r/c', 3, 3], ['/r/d', 5, 5]]);
      assert.equal(await events.countFor('rowless-1'), 5);
    });

    it('events: history rows above an agent\'s committed seq (written outside ingest) are found under the lock: resends skipped, no state moved, on either statement path', async () => {
      const agents = createAgentStore(db.sql, clock);
      const events = createEventStore(db.sql, clock);
      await agents.create({ id: 'ahead-1', hostname: 'h', tokenId: 't', labels: {} });
      const sized = (d: FileDelta, size: number): FileDelta => ({ ...d, state: { ...d.state!, size } });
      await events.ingest('ahead-1', [delta(1, '/h/a'), delta(2, '/h/b')], () => 'rule');
      // As if the committed seq had been lost: the history says 2, the agent's row 0.
      await db.sql.query("update agents set committed_seq = 0 where id = 'ahead-1'");
      const one = await events.ingest('ahead-1', [sized(delta(1, '/h/a'), 91), delta(3, '/h/c')], () => 'rule');
      assert.deepEqual(one.stored.map((d) => d.seq), [3]);
      assert.deepEqual(one.alerts.map((a) => a.seq), [3]);
      await db.sql.query("update agents set committed_seq = 0 where id = 'ahead-1'");
      const two = await events.ingest('ahead-1', [sized(delta(2, '/h/b'), 92), sized(delta(4, '/h/d'), 4), sized(delta(5, '/h/d', 'modified'), 5)], () => null);
      assert.deepEqual(two.stored.map((d) => d.seq), [4, 5]);
      assert.equal(two.committedSeq, 5);
      const state = await db.sql.query('select path_text, size, updated_seq from file_state where agent_id = $1 order by path_text', ['ahead-1']);
      assert.deepEqual(state.map((r) => [r.path_text, Number(r.size), Number(r.updated_seq)]), [['/h/a', 1, 1], ['/h/b', 2, 2], ['/h/c', 3, 3], ['/h/d', 5, 5]]);
      // Caught up: the next group is clean again.
      assert.deepEqual((await events.ingest('ahead-1', [delta(6, '/h/e')], () => null)).stored.map((d) => d.seq), [6]);
      assert.equal(await events.countFor('ahead-1'), 6);
    });

    it('events: a group of many agents in one statement stores what one ingest per agent would', async () => {
      const agents = createAgentStore(db.sql, clock);
      const events = createEventStore(db.sql, clock);
      const ids = Array.from({ length: 8 }, (_, i) => `many-${i}`);
      for (const id of ids) await agents.create({ id, hostname: id, tokenId: 't', labels: {} });
      const batchFor = (id: string) => Array.from({ length: 250 }, (_, i) => delta(i + 1, `/srv/${id}/f${i}`));
      const res = await events.ingestGroup(ids.map((agentId) => ({ agentId, deltas: batchFor(agentId), refusals: [], alertRuleFor: (p: Buffer) => (p.toString().endsWith('/f7') ? 'seven' : null) })));
      assert.deepEqual(res.map((r) => [r!.committedSeq, r!.stored.length, r!.alerts.map((a) => a.seq)]), ids.map(() => [250, 250, [8]]));
      const counts = await db.sql.query("select agent_id, count(*)::int as n, count(*) filter (where entry_digest is not null and path_position is not null)::int as digested from file_state where agent_id like 'many-%' group by agent_id order by agent_id");
      assert.deepEqual(counts.map((r) => [r.agent_id, r.n, r.digested]), ids.map((id) => [id, 250, 250]));
      for (const id of ids) assert.equal((await agents.get(id))?.lastSeq, 250);
    });

    it('alerts: the outbox hands out unsent alerts once per lease, with what a notifier needs', async () => {
      const events = createEventStore(db.sql, clock);
      const alertStore = createAlertStore(db.sql, clock);
      const res = await events.ingest('agent-3', [delta(1, '/srv/www/shell.php')], () => 'web');
      assert.equal(res.alerts.length, 1);
      const later = new Date(now.getTime() + 1000);
      // As a notifier gets them: the outbox assembles each alert from its row (alerts/outbox.ts).
      const mine = (list: Awaited<ReturnType<typeof alertStore.claimPending>>) => list.map(toAlert).filter((a) => a.agentId === 'agent-3');
      const claimed = mine(await alertStore.claimPending(later, 60_000, 1000));
      assert.deepEqual(claimed.map((a) => [a.agentId, a.seq, a.rule, a.kind, a.path]), [['agent-3', 1, 'web', 'created', '/srv/www/shell.php']]);
      assert.equal(claimed[0]!.sha256, Buffer.alloc(32, 1).toString('hex'));
      assert.deepEqual(mine(await alertStore.claimPending(later, 60_000, 1000)), [], 'leased');
      await alertStore.markNotified(claimed[0]!.id);
      now = new Date(now.getTime() + 120_000);
      assert.deepEqual(mine(await alertStore.claimPending(new Date(now.getTime() + 1000), 60_000, 1000)), [], 'notified alerts are done');
    });

    it('events: keyset paging and a glob with a literal base return every match once', async () => {
      const events = createEventStore(db.sql, clock);
      const many = Array.from({ length: 2500 }, (_, i) => delta(i + 1, i % 2 ? `/var/log/app/${i}.log` : `/etc/conf.d/${i}.conf`));
      await events.ingest('agent-4', many, () => null);
      const logs = (await events.list({ agentId: 'agent-4', pathGlob: '/var/log/**/*.log', limit: 100_000 })).events;
      assert.equal(logs.length, 1250);
      assert.equal(new Set(logs.map((e) => e.delta.seq)).size, 1250);
      assert.ok(logs.every((e, i) => i === 0 || e.delta.seq > logs[i - 1]!.delta.seq), 'oldest first');
      const newest = (await events.list({ agentId: 'agent-4', limit: 3 })).events;
      assert.deepEqual(newest.map((e) => e.delta.seq), [2498, 2499, 2500]);
      // Cut at the limit: said, and the next page follows on from the oldest event shown.
      const first = await events.list({ agentId: 'agent-4', limit: 1000 });
      assert.equal(first.more, true);
      const oldest = first.events[0]!;
      const next = await events.list({ agentId: 'agent-4', limit: 2000, before: { detectedAt: oldest.delta.detectedAt, agentId: oldest.agentId, seq: oldest.delta.seq } });
      assert.equal(next.more, false);
      assert.deepEqual([...next.events, ...first.events].map((e) => e.delta.seq), many.map((d) => d.seq), 'two pages: every event once, in order');
      assert.equal((await events.list({ agentId: 'agent-4', limit: 2500 })).more, false, 'exactly the limit: nothing more');
      assert.equal((await events.list({ agentId: 'agent-4', kinds: ['deleted'], limit: 10 })).events.length, 0);
      assert.equal((await events.list({ agentId: 'agent-4', kinds: ['created'], limit: 10_000 })).events.length, 2500);
      assert.equal((await events.list({ agentId: 'agent-4', until: many[0]!.detectedAt, limit: 10 })).events.length, 0, 'until is exclusive');
      assert.equal(((await events.list({ agentId: 'agent-4', pathGlob: '/etc/conf_d/**', limit: 10 })).events).length, 0, 'underscore is literal');
    });

    it('events and current state: the named attribute values round-trip, empty apart from absent, and digest alike on both sides', async () => {
      const events = createEventStore(db.sql, clock);
      const d = delta(1, '/etc/shadow');
      const values = encodeXattrs([[Buffer.from('security.selinux'), Buffer.from('system_u:object_r:shadow_t:s0\0')]]);
      await events.ingest('agent-7', [{ ...d, state: { ...d.state!, attrValues: values } }, { ...delta(2, '/etc/hosts'), state: { ...d.state!, attrValues: Buffer.alloc(0) } }, delta(3, '/etc/motd')], () => null);
      const listed = (await events.list({ agentId: 'agent-7', limit: 10 })).events;
      assert.deepEqual(listed.map((e) => e.delta.state?.attrValues ?? null), [values, Buffer.alloc(0), null]);
      const files = await createStateStore(db.sql).page('agent-7', { limit: 10 });
      const shadow = files.find((f) => f.path.toString() === '/etc/shadow')!;
      assert.equal(entryDigest(shadow.path, shadow.state), entryDigest(Buffer.from('/etc/shadow'), { ...d.state!, attrValues: values }));
    });

    it('events: a sha512 or blake2b512 digest round-trips', async () => {
      const events = createEventStore(db.sql, clock);
      const d = delta(1, '/opt/app.jar');
      const withDigest = { ...d, state: { ...d.state!, sha256: null, digest: { algorithm: 'blake2b512' as const, value: Buffer.alloc(64, 9) } } };
      await events.ingest('agent-5', [withDigest], () => null);
      const [e] = (await events.list({ agentId: 'agent-5', limit: 1 })).events;
      assert.equal(e!.delta.state?.sha256, null);
      assert.deepEqual(e!.delta.state?.digest, { algorithm: 'blake2b512', value: Buffer.alloc(64, 9) });
    });

    it('sync: range digests and entries of an agent\'s current state, old rows included', async () => {
      const events = createEventStore(db.sql, clock);
      const sync = createSyncStore(db.sql);
      const paths = Array.from({ length: 40 }, (_, i) => `/sync/f${i}`);
      await events.ingest('agent-6', paths.map((p, i) => delta(i + 1, p)), () => null);
      await events.ingest('agent-6', [delta(41, '/sync/f3', 'deleted'), delta(42, '/sync/f4', 'modified')], () => null);
      await events.ingest('agent-7', [delta(1, '/sync/other')], () => null); // another agent's row: never counted
      // What the agent holds: every path but f3, f4 in its modified state.
      const current = new Map(paths.map((p, i) => [p, delta(i + 1, p).state!]));
      current.delete('/sync/f3');
      current.set('/sync/f4', delta(42, '/sync/f4').state!);
      const expected = emptyRange();
      for (const [p, st] of current) addEntry(expected, entryDigest(Buffer.from(p), st));

      const [whole] = await sync.rangeDigests('agent-6', [[MIN_POSITION, MAX_POSITION]]);
      assert.deepEqual(whole, expected);
      const parts = splitRange(MIN_POSITION, MAX_POSITION, 16);
      const digests = await sync.rangeDigests('agent-6', parts);
      assert.equal(digests.length, 16);
      const combined = emptyRange();
      for (const d of digests) {
        combined.count += d.count;
        combined.xor ^= d.xor;
      }
      assert.deepEqual(combined, expected, 'the parts add up to the whole');
      // The entries of one part are the paths whose position falls in it, with their digests.
      const [lo, hi] = parts[digests.findIndex((d) => d.count > 0)]!;
      const [entries, none] = await sync.entriesIn('agent-6', [[lo, hi], [MIN_POSITION, MIN_POSITION]]);
      assert.deepEqual(none, [], 'a range nothing falls in');
      const inPart = [...current].filter(([p]) => pathPosition(Buffer.from(p)) >= lo && pathPosition(Buffer.from(p)) <= hi);
      assert.deepEqual(
        entries!.map((e) => [e.path.toString(), e.digest]).sort(),
        inPart.map(([p, st]) => [p, entryDigest(Buffer.from(p), st)]).sort(),
      );
      // Rows from before migration 6 have no digests: they are filled in, with the same result.
      await db.sql.query("update file_state set path_position = null, entry_digest = null where agent_id = 'agent-6'");
      assert.deepEqual((await sync.rangeDigests('agent-6', [[MIN_POSITION, MAX_POSITION]]))[0], expected);
      assert.deepEqual(await sync.rangeDigests('agent-8', [[MIN_POSITION, MAX_POSITION]]), [emptyRange()], 'an agent with no files');
    });

    it('policies: each apply is a new version', async () => {
      const policies = createPolicyStore(db.sql, clock);
      assert.equal(await policies.current(), null);
      const p1 = await policies.apply({ rules: [defineRule({ name: 'etc', paths: ['/etc'], exclude: [], alert: true, selector: {} })], limits: DEFAULT_LIMITS }, 'op');
      const p2 = await policies.apply({ rules: [defineRule({ name: 'www', paths: ['/var/www'], exclude: ['**/*.tmp'], alert: false, selector: {} })], limits: { maxFilesPerRule: 5, nice: 3, ioBytesPerSecond: 2e6 } }, 'op');
      assert.equal(p2.version, p1.version + 1);
      assert.deepEqual(await policies.current(), p2);
    });

    it('commands: a group for 1,000 agents is created in one statement and marked delivered in one, revoked and expired-certificate agents left out', async () => {
      const agents = createAgentStore(db.sql, clock);
      const n = 1000;
      const ids = Array.from({ length: n }, (_, i) => `cmd-a${String(i).padStart(4, '0')}`);
      await db.sql.query(
        `insert into agents (id, hostname, enrolled_at) select unnest($1::text[]), 'h', $2`,
        [ids, now],
      );
      // Certificates: valid for all but the last one, whose only certificate expired.
      await db.sql.query(
        `insert into certificates (serial, agent_id, subject, key_fingerprint, not_before, not_after, issued_at)
         select 'cmd-' || id, id, 's', 'k', $2::timestamptz, case when id = $3 then $2::timestamptz else $2::timestamptz + interval '1 day' end, $2::timestamptz from unnest($1::text[]) as id`,
        [ids, now, ids[n - 1]],
      );
      await agents.revoke(ids[0]!, 'test');
      const counted = counting(db.sql);
      const commands = createCommandStore(counted, clock);
      const expiresAt = new Date(now.getTime() + 3_600_000);
      const created = await commands.createGroup({ groupId: 'cmd-g1', kind: 'rescan', args: { fullHash: true }, createdBy: 'op', expiresAt, targets: 'every-agent' });
      const mine = created.filter((c) => c.agentId.startsWith('cmd-'));
      assert.equal(counted.statements, 1, 'one statement');
      assert.deepEqual(mine.map((c) => c.agentId), ids.slice(1, n - 1), 'every agent that can connect, by id; not the revoked one, not the one with an expired certificate');
      assert.equal(new Set(mine.map((c) => c.id)).size, mine.length, 'an id each');

      counted.statements = 0;
      const claimed = await commands.claimPending(ids, 'cmd-g1');
      assert.equal(counted.statements, 1, 'one statement');
      assert.equal(claimed.length, n - 2);
      assert.deepEqual(claimed[0]!.args, { fullHash: true });
      assert.equal(claimed[0]!.groupId, 'cmd-g1');
      assert.deepEqual(await commands.claimPending(ids, 'cmd-g1'), [], 'claimed once');
      const g = await commands.group('cmd-g1');
      assert.deepEqual(g?.counts, { pending: 0, delivered: n - 2, done: 0, failed: 0, expired: 0 });
      assert.deepEqual((await commands.group(mine[5]!.id))?.groupId, 'cmd-g1', 'found by one of its commands too');
      assert.equal(await commands.group('no-such-group'), null);
    });

    it('agents: the lookups of many new streams in one query, one result per stream in order', async () => {
      const agents = createAgentStore(db.sql, clock);
      await db.sql.query(`insert into agents (id, hostname, enrolled_at) values ('fs-a', 'ha', $1), ('fs-b', 'hb', $1)`, [now]);
      await db.sql.query(
        `insert into certificates (serial, agent_id, subject, key_fingerprint, not_before, not_after, issued_at)
         values ('aa01', 'fs-a', 's', 'k', $1, $2, $1), ('bb01', 'fs-b', 's', 'k', $1, $2, $1)`,
        [now, new Date(now.getTime() + 86_400_000)],
      );
      const counted = counting(db.sql);
      const found = await createAgentStore(counted, clock).forStreams([
        { id: 'fs-b', serial: 'BB01' },
        { id: 'fs-none', serial: 'aa01' },
        { id: 'fs-a', serial: 'ff99' },
        { id: 'fs-a', serial: 'aa01' },
        { id: 'fs-b', serial: 'BB01' },
      ]);
      assert.equal(counted.statements, 1, 'one query');
      assert.deepEqual(
        found.map((f) => (f ? [f.agent.id, f.agent.hostname, f.cert?.serial ?? null, f.cert?.agentId ?? null] : null)),
        [['fs-b', 'hb', 'bb01', 'fs-b'], null, ['fs-a', 'ha', null, null], ['fs-a', 'ha', 'aa01', 'fs-a'], ['fs-b', 'hb', 'bb01', 'fs-b']],
      );
      assert.deepEqual(await agents.forStream('fs-a', 'AA01').then((f) => f?.cert?.serial), 'aa01');
    });

    it('commands: two claimers racing for the same pending commands never both get one', async () => {
      const commands = createCommandStore(db.sql, clock);
      const ids = ['cmd-a0100', 'cmd-a0101', 'cmd-a0102'];
      await commands.createGroup({ groupId: 'cmd-race', kind: 'rescan', args: {}, createdBy: 'op', expiresAt: new Date(now.getTime() + 60_000), targets: { agentIds: ids } });
      const results = await Promise.all(Array.from({ length: 6 }, () => commands.claimPending(ids)));
      const all = results.flat().filter((c) => c.groupId === 'cmd-race');
      assert.equal(all.length, 3);
      assert.equal(new Set(all.map((c) => c.id)).size, 3);
      await commands.unclaim([all[0]!.id]);
      assert.deepEqual((await commands.claimPending(ids)).map((c) => c.id), [all[0]!.id], 'given back, claimed again');
    });

    it('commands: reports complete them done or failed; past expiry they read as expired and the sweep marks them; revoked agents\' fail', async () => {
      const commands = createCommandStore(db.sql, clock);
      const agents = createAgentStore(db.sql, clock);
      const ids = ['cmd-a0200', 'cmd-a0201', 'cmd-a0202', 'cmd-a0203', 'cmd-a0204'];
      const expiresAt = new Date(now.getTime() + 60_000);
      const c = await commands.createGroup({ groupId: 'cmd-life', kind: 'rescan', args: {}, createdBy: 'op', expiresAt, targets: { agentIds: ids } });
      const byAgent = new Map(c.map((x) => [x.agentId, x.id]));
      const summary = { filesScanned: 3, changes: 1, errors: 0, startedAt: now, finishedAt: now };
      await commands.claimPending(ids.slice(0, 3));
      assert.equal(await commands.complete(byAgent.get(ids[0]!)!, ids[1]!, summary), false, 'only its own agent completes it');
      assert.equal(await commands.complete(byAgent.get(ids[0]!)!, ids[0]!, summary), true);
      assert.equal(await commands.complete(byAgent.get(ids[0]!)!, ids[0]!, summary), false, 'once');
      assert.equal(await commands.complete(byAgent.get(ids[1]!)!, ids[1]!, summary, 'no policy applied yet'), true);
      await agents.revoke(ids[3]!, 'test');
      assert.deepEqual(await commands.claimPending([ids[3]!]), [], "a revoked agent's command is never claimed");
      const states = async () => new Map((await commands.groupCommands('cmd-life')).map((x) => [x.agentId, x.state]));
      assert.deepEqual([...(await states()).values()], ['done', 'failed', 'delivered', 'pending', 'pending']);
      const failed = await commands.list({ state: 'failed', groupId: 'cmd-life', limit: 10 });
      assert.deepEqual(failed.commands.map((x) => [x.agentId, x.failure]), [[ids[1], 'no policy applied yet']]);

      const swept = await commands.sweep();
      assert.ok(swept.failed >= 1);
      assert.equal((await states()).get(ids[3]!), 'failed', "the revoked agent's");
      const saved = now;
      now = new Date(expiresAt.getTime() + 1);
      try {
        assert.deepEqual([...(await states()).values()], ['done', 'failed', 'expired', 'failed', 'expired'], 'expired as of the read, before any sweep');
        assert.deepEqual(await commands.claimPending(ids), [], 'an expired command is not claimed');
        assert.equal((await commands.list({ state: 'expired', groupId: 'cmd-life', limit: 10 })).commands.length, 2);
        assert.ok((await commands.sweep()).expired >= 2);
        const raw = await db.sql.query<{ state: string }>(`select state from commands where group_id = 'cmd-life' order by agent_id`);
        assert.deepEqual(raw.map((r) => r.state), ['done', 'failed', 'expired', 'failed', 'expired'], 'stored by the sweep');
        assert.equal((await commands.group('cmd-life'))?.counts.expired, 2);
      } finally {
        now = saved;
      }
    });

    it('commands: ls filters by state, agent and group, newest first, with a limit; pendingUntil is the latest expiry of a pending one', async () => {
      const commands = createCommandStore(db.sql, clock);
      const saved = now;
      try {
        for (let i = 0; i < 3; i++) {
          now = new Date(saved.getTime() + 1000 * (i + 1));
          await commands.createGroup({ groupId: `cmd-ls${i}`, kind: 'rescan', args: {}, createdBy: 'op', expiresAt: new Date(now.getTime() + 600_000 + i), targets: { agentIds: ['cmd-a0300', 'cmd-a0301'] } });
        }
        const mine = await commands.list({ agentId: 'cmd-a0300', limit: 2 });
        assert.deepEqual(mine.commands.map((x) => x.groupId), ['cmd-ls2', 'cmd-ls1']);
        assert.equal(mine.more, true);
        assert.equal((await commands.list({ agentId: 'cmd-a0300', limit: 4 })).more, false, 'these three and the every-agent group');
        assert.equal((await commands.list({ groupId: 'cmd-ls1', state: 'pending', limit: 10 })).commands.length, 2);
        assert.equal((await commands.list({ groupId: 'cmd-ls1', state: 'done', limit: 10 })).commands.length, 0);
        assert.deepEqual(await commands.pendingUntil(), new Date(now.getTime() + 600_002));
      } finally {
        now = saved;
      }
    });
  });
}
