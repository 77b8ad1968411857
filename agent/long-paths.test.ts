import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import type { FileDelta } from '../core/model.js';
import { DEFAULT_LIMITS, defineRule } from '../core/policy-schema.js';
import { createPathRules } from '../core/policy-match.js';
import { openTempStore } from '../test/support/temp-store.js';
import { createMonitor } from './monitor.js';
import { createHashPool } from './scan/hash-pool.js';
import { scanTree, type ScanCounts } from './scan/scan-tree.js';
import type { Change, LocalStore } from './store/local-store.js';

/** LMDB refuses keys longer than this; the paths below are longer. */
const LMDB_MAX_KEY = 1978;

/** 20 nested directories of 120-byte names under root, and a file in the deepest: its path is over 2,400 bytes. */
function deepDirectory(root: string, letter: string): string {
  let dir = root;
  for (let i = 0; i < 20; i++) dir = join(dir, `${String(i).padStart(2, '0')}${letter.repeat(118)}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

describe('paths longer than LMDB keys', () => {
  const base = mkdtempSync(join(tmpdir(), 'vigil-long-'));
  after(() => rmSync(base, { recursive: true, force: true }));
  const pool = createHashPool({ threads: 2 });
  after(() => pool.close());

  const scan = async (store: LocalStore, root: string, sharded: boolean) => {
    const changes: Change[] = [];
    const counts: ScanCounts = { files: 0, bytes: 0, errors: 0, changes: 0 };
    const rules = createPathRules([defineRule({ name: 'r', paths: [root] })]);
    const record = (c: Change[]) => {
      store.journal.record(c);
      changes.push(...c);
    };
    await scanTree(Buffer.from(root), { store, pool, clock: () => new Date(0), rules, fullHash: false, source: 'scan', sharded, record }, counts);
    // 'refreshed' (a directory's times moved, not a change under the rule) is left out.
    const reported = changes.filter((c) => c.kind !== 'refreshed');
    return { changes: reported, counts, kinds: new Map(reported.map((c) => [c.path.toString('latin1'), c.kind])) };
  };

  for (const sharded of [false, true]) {
    it(`scans a root holding a path over ${LMDB_MAX_KEY} bytes; the path is created, modified and deleted like any other (${sharded ? 'sharded' : 'ordered'})`, async () => {
      const root = join(base, `scan-${sharded}`);
      mkdirSync(root);
      writeFileSync(join(root, 'a-before'), 'before');
      writeFileSync(join(root, 'z-after'), 'after');
      const deep = deepDirectory(root, 'x');
      const long = join(deep, 'long-file');
      writeFileSync(long, 'deep content');
      // A second long path beside it and one in another long directory with the same first bytes.
      writeFileSync(join(deep, 'another'), 'another');
      const sibling = `${deep.slice(0, -5)}yyyyy`;
      mkdirSync(sibling);
      writeFileSync(join(sibling, 'f'), 'sibling');
      assert.ok(Buffer.byteLength(long) > 2000, `the path is ${Buffer.byteLength(long)} bytes`);
      const temp = openTempStore();
      try {
        const first = await scan(temp.store, root, sharded);
        assert.equal(first.kinds.get(long), 'created');
        const created = first.changes.find((c) => c.path.toString('latin1') === long)!;
        assert.deepEqual(created.path, Buffer.from(long), 'the delta carries the full path bytes');
        assert.equal(created.state?.size, 'deep content'.length);
        for (const p of [join(root, 'a-before'), join(root, 'z-after'), join(deep, 'another'), join(sibling, 'f'), deep]) assert.equal(first.kinds.get(p), 'created', p);
        assert.deepEqual(temp.store.outbox.pending(0, 1_000_000).find((d) => d.path.equals(Buffer.from(long)))?.kind, 'created', 'queued with its full path');
        assert.equal(temp.store.baseline.get(Buffer.from(long))?.size, 'deep content'.length, 'the baseline holds its state');
        const under = [...temp.store.baseline.under(Buffer.from(root))].map((e) => e.path.toString('latin1'));
        assert.deepEqual(under, [...under].sort((a, b) => Buffer.compare(Buffer.from(a.replaceAll('/', '\0'), 'latin1'), Buffer.from(b.replaceAll('/', '\0'), 'latin1'))), 'the baseline is listed in walk order');
        assert.ok(under.includes(long) && under.includes(join(sibling, 'f')));

        assert.deepEqual((await scan(temp.store, root, sharded)).changes, [], 'an unchanged tree: nothing (no false deletion or creation)');

        appendFileSync(long, ' changed');
        const second = await scan(temp.store, root, sharded);
        assert.deepEqual([...second.kinds], [[long, 'modified']]);

        unlinkSync(long);
        writeFileSync(join(root, 'new-short'), 'n');
        const third = await scan(temp.store, root, sharded);
        assert.deepEqual([...third.kinds].sort(), [[join(root, 'new-short'), 'created'], [long, 'deleted']].sort());
        assert.equal(temp.store.baseline.get(Buffer.from(long)), undefined);

        rmSync(join(root, '00' + 'x'.repeat(118)), { recursive: true });
        const fourth = await scan(temp.store, root, sharded);
        assert.ok([...fourth.kinds.values()].every((k) => k === 'deleted'));
        assert.equal(fourth.kinds.get(join(deep, 'another')), 'deleted');
        assert.equal(fourth.kinds.get(join(sibling, 'f')), 'deleted');
        assert.equal([...temp.store.baseline.under(Buffer.from(root))].length, 4, 'left: the root and its three short files');
      } finally {
        await temp.dispose();
      }
    });
    it(`scans a root that is itself longer than LMDB keys, its scan units bounded by long keys (${sharded ? 'sharded' : 'ordered'})`, async () => {
      const root = deepDirectory(join(base, `long-root-${sharded}`), 'r');
      for (const sub of ['a/one', 'a/two', 'b/one']) {
        mkdirSync(join(root, sub), { recursive: true });
        writeFileSync(join(root, sub, 'f'), sub);
      }
      writeFileSync(join(root, 'top'), 'top');
      const temp = openTempStore();
      try {
        const first = await scan(temp.store, root, sharded);
        assert.equal(first.changes.length, 10, 'the root, 2 + 3 directories, 3 files and top');
        assert.ok(first.changes.every((c) => c.kind === 'created'));
        assert.deepEqual((await scan(temp.store, root, sharded)).changes, []);
        unlinkSync(join(root, 'a', 'two', 'f'));
        appendFileSync(join(root, 'b', 'one', 'f'), '!');
        const again = await scan(temp.store, root, sharded);
        assert.deepEqual([...again.kinds].sort(), [[join(root, 'a', 'two', 'f'), 'deleted'], [join(root, 'b', 'one', 'f'), 'modified']].sort());
      } finally {
        await temp.dispose();
      }
    });
  }

  it('reports a real-time change of a long path, in the same batch as other changes', { timeout: 30_000 }, async () => {
    const root = join(base, 'live');
    mkdirSync(root);
    const deep = deepDirectory(root, 'w');
    const long = join(deep, 'watched');
    writeFileSync(long, 'v1');
    const temp = openTempStore();
    const monitor = createMonitor({ store: temp.store, pool, logger: pino({ level: 'silent' }), clock: () => new Date() });
    const seen: FileDelta[] = [];
    monitor.on('queued', (deltas: FileDelta[]) => void seen.push(...deltas));
    const waitFor = async (what: string, found: () => boolean) => {
      const deadline = Date.now() + 20_000;
      while (!found() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.ok(found(), `${what} (seen: ${seen.map((d) => `${d.kind} ${d.path.length} bytes`).join(', ')})`);
    };
    const has = (path: string, kind: string) => () => seen.some((d) => d.kind === kind && d.path.equals(Buffer.from(path)));
    try {
      const summary = await monitor.applyPolicy({ version: 1, limits: DEFAULT_LIMITS, rules: [defineRule({ name: 'live', paths: [root], alert: true, selector: {} })] });
      assert.ok(has(long, 'created')(), 'baselined');
      assert.equal(summary.errors, 0);
      seen.length = 0;
      appendFileSync(long, ' v2');
      writeFileSync(join(root, 'short'), 'beside it');
      await waitFor('the long path modified and the short one created', () => has(long, 'modified')() && has(join(root, 'short'), 'created')());
      assert.ok(seen.every((d) => d.source === 'realtime'));
      unlinkSync(long);
      await waitFor('the long path deleted', has(long, 'deleted'));
      assert.equal(temp.store.baseline.get(Buffer.from(long)), undefined);
    } finally {
      await monitor.close();
      await temp.dispose();
    }
  });
});
