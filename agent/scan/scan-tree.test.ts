import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync, chmodSync, appendFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openTempStore } from '../../test/support/temp-store.js';
import { after, describe, it } from 'node:test';
import { defineRule } from '../../core/policy-defaults.js';
import { createPathRules } from '../../core/policy-match.js';
import { openLocalStore, type Change } from '../store/local-store.js';
import { createHashPool, type HashPool } from './hash-pool.js';
import { pathAt } from './path-batch.js';
import { pathToKey } from '../store/path-key.js';
import { REMOVED_DELETED } from './shard-chunk.js';
import { readStatStateSync } from '../file-state.js';
import { scanTree, type ScanCounts } from './scan-tree.js';
import { createScanThreads } from './scan-threads.js';
import { planShards } from './shard-plan.js';
import { walkScope } from './walk-scope.js';
import { walkSorted } from './walker.js';

/** A tree with subtrees at the shard depth and below, more entries near the root than one unit holds, and odd names. */
function makeTree(root: string): void {
  for (let a = 0; a < 3; a++) {
    for (let b = 0; b < 4; b++) {
      const dir = join(root, `d${a}`, `s${b}`);
      mkdirSync(join(dir, 'deep'), { recursive: true });
      for (let f = 0; f < 5; f++) writeFileSync(join(dir, `f${f}`), `${a}/${b}/${f}`);
      writeFileSync(join(dir, 'deep', 'x'), `deep ${a} ${b}`);
    }
    for (let f = 0; f < 120; f++) writeFileSync(join(root, `d${a}`, `top${f}`), `top ${a} ${f}`);
  }
  writeFileSync(join(root, 'rootfile'), 'r');
  writeFileSync(Buffer.concat([Buffer.from(join(root, 'd1', 'odd')), Buffer.from([0xff, 0x0a])]), 'odd');
  symlinkSync('rootfile', join(root, 'link'));
}

/** One scan of root (rule path: rulePath, default root) into the store in stateDir: its changes, counts and resulting baseline. */
async function scanOnce(pool: HashPool, root: string, stateDir: string, opts: { sharded: boolean; fullHash?: boolean; rulePath?: string }) {
  const rules = createPathRules([defineRule({ name: 'r', paths: [opts.rulePath ?? root] })]);
  const store = openLocalStore(stateDir);
  try {
    const changes: Change[] = [];
    const counts: ScanCounts = { files: 0, bytes: 0, errors: 0, changes: 0 };
    const record = (c: Change[]) => (changes.push(...c), store.journal.record(c));
    await scanTree(Buffer.from(root), { store, pool, clock: () => new Date(0), rules, fullHash: opts.fullHash ?? false, source: 'scan', sharded: opts.sharded, record }, counts);
    const baseline = [...store.baseline.encodedUnder(Buffer.from(root))].map((e) => [e.key.toString('hex'), e.value.toString('hex')]);
    return { changes, counts, baseline };
  } finally {
    await store.close();
  }
}

describe('sharded scan', () => {
  const base = mkdtempSync(join(tmpdir(), 'vigil-shard-'));
  after(() => rmSync(base, { recursive: true, force: true }));
  const pool = createHashPool({ threads: 2 });
  after(() => pool.close());

  it('plans units that cover the root key range in order and together walk exactly what one walk does', () => {
    const root = join(base, 'plan');
    makeTree(root);
    const rootBuf = Buffer.from(root);
    const rules = createPathRules([defineRule({ name: 'r', paths: [root] })]);
    const scope = walkScope(rootBuf, rules);
    const units = planShards(rootBuf, scope, 2, 50)!;
    assert.equal(planShards(rootBuf, scope, 2, 50, 100), null, 'too many entries near the root: no plan');
    assert.ok(units.filter((u) => u.subtree).length === 12, 'one unit per depth-2 directory');
    assert.ok(units.filter((u) => !u.subtree).length > 3, 'the entries near the root are split into groups');
    assert.deepEqual(units[0]!.start, pathToKey(rootBuf));
    assert.deepEqual(units.at(-1)!.end, Buffer.concat([pathToKey(rootBuf), Buffer.of(1)]));
    for (let i = 1; i < units.length; i++) assert.deepEqual(units[i]!.start, units[i - 1]!.end, `unit ${i} starts where unit ${i - 1} ends`);
    const together = units.flatMap((u) => (u.subtree ? [...walkSorted(u.subtree, scope)].slice(1).map((e) => e.path) : u.entries.map((e) => e.path)));
    const whole = [...walkSorted(rootBuf, scope)].map((e) => e.path);
    assert.deepEqual(together, whole);
    for (const u of units) for (const e of u.entries) {
      const k = pathToKey(e.path);
      assert.ok(Buffer.compare(u.start, k) <= 0 && Buffer.compare(k, u.end) < 0, 'each entry lies in its unit key range');
    }
  });

  it('finds the same changes and leaves the same baseline as the ordered scan', async () => {
    const root = join(base, 'tree');
    makeTree(root);
    const scan = async (dir: string, sharded: boolean, fullHash = false) => {
      const { changes, baseline, counts } = await scanOnce(pool, root, dir, { sharded, fullHash });
      const sorted = changes.map((c) => `${c.kind} ${c.path.toString('hex')} ${c.state?.sha256?.toString('hex') ?? ''}`).sort();
      return { changes: sorted, baseline, counts };
    };
    const ordered = join(base, 'ordered');
    const first = await scan(ordered, false);
    assert.equal(first.changes.length, first.baseline.length, 'the first scan records every path');
    const sharded = join(base, 'sharded');
    const firstSharded = await scan(sharded, true);
    assert.deepEqual(firstSharded.changes, first.changes);
    assert.deepEqual(firstSharded.baseline, first.baseline);
    assert.equal(firstSharded.counts.files, first.counts.files);
    assert.equal(firstSharded.counts.bytes, first.counts.bytes);

    // Every kind of change, in units of each kind: near the root, inside subtrees, whole subtrees.
    appendFileSync(join(root, 'd0', 's1', 'f2'), ' more');
    chmodSync(join(root, 'd2', 'top7'), 0o600);
    unlinkSync(join(root, 'd1', 'top3'));
    rmSync(join(root, 'd1', 's2'), { recursive: true });
    writeFileSync(join(root, 'd1', 's2'), 'a file where a directory was');
    mkdirSync(join(root, 'd2', 'new', 'deeper'), { recursive: true });
    writeFileSync(join(root, 'd2', 'new', 'deeper', 'n'), 'new');
    writeFileSync(join(root, 'd0', 's3', 'deep', 'x.new'), 'moved');
    renameSync(join(root, 'd0', 's3', 'deep', 'x.new'), join(root, 'd0', 's3', 'deep', 'x'));
    writeFileSync(join(root, 'zz-last'), 'after every unit');
    rmSync(join(root, 'd0', 's0'), { recursive: true });
    unlinkSync(join(root, 'd0', 's1', 'f4')); // the last entry of its subtree
    const beforeOrdered = join(base, 'ordered-copy');
    cpSync(ordered, beforeOrdered, { recursive: true });

    const again = await scan(ordered, false);
    const againSharded = await scan(sharded, true);
    assert.ok(again.changes.length >= 10, `the ordered scan saw the changes (${again.changes.length})`);
    assert.ok(again.changes.some((c) => c === `deleted ${Buffer.from(join(root, 'd0', 's1', 'f4')).toString('hex')} `));
    assert.deepEqual(againSharded.changes, again.changes);
    assert.deepEqual(againSharded.baseline, again.baseline);
    assert.equal(againSharded.counts.files, again.counts.files);

    // A full re-hash finds nothing more, either way.
    assert.deepEqual((await scan(sharded, true, true)).changes, []);
    assert.deepEqual((await scan(ordered, false, true)).changes, []);
  });

  it('stops its threads and rejects when recording a chunk fails; the next run starts new threads', async () => {
    const root = join(base, 'failing');
    makeTree(root);
    const rules = createPathRules([defineRule({ name: 'r', paths: [root] })]);
    const units = planShards(Buffer.from(root), walkScope(Buffer.from(root), rules))!;
    const threads = createScanThreads({ threads: 2 });
    try {
      const job = { root: Buffer.from(root), units, rules: rules.rules, store: null, fullHash: false };
      const filesOf = async () => {
        let files = 0;
        await threads.run(job, (c) => void (files += c.files));
        return files;
      };
      const before = await filesOf();
      assert.ok(before > 400);
      let chunks = 0;
      const failure = new Error('disk full');
      await assert.rejects(
        threads.run(job, () => {
          chunks++;
          throw failure;
        }),
        (err) => err === failure,
      );
      assert.equal(chunks, 1, 'no chunk is handled after the failure');
      // The threads were stopped mid-run; the next run (new threads) sees the whole tree again.
      assert.equal(await filesOf(), before);
      assert.equal(await filesOf(), before, 'threads are reused from run to run');
    } finally {
      await threads.close();
    }
  });

  it('agrees with the ordered scan when the root is a file, and when the root is gone', async () => {
    const run = async (root: string, dir: string, sharded: boolean) =>
      (await scanOnce(pool, root, dir, { sharded })).changes.map((x) => `${x.kind} ${x.path.toString('latin1')}`).sort();
    const file = join(base, 'single-file');
    writeFileSync(file, 'one');
    const tree = join(base, 'vanishing');
    makeTree(tree);
    for (const sharded of [false, true]) {
      const dir = join(base, `roots-${sharded}`);
      assert.deepEqual(await run(file, dir, sharded), [`created ${file}`]);
      assert.equal((await run(tree, dir, sharded)).length > 400, true);
    }
    appendFileSync(file, ' more');
    rmSync(tree, { recursive: true });
    for (const sharded of [false, true]) {
      const dir = join(base, `roots-${sharded}`);
      assert.deepEqual(await run(file, dir, sharded), [`modified ${file}`], `sharded: ${sharded}`);
    }
    const ordered = await run(tree, join(base, 'roots-false'), false);
    const shardedGone = await run(tree, join(base, 'roots-true'), true);
    assert.ok(ordered.length > 400 && ordered.every((c) => c.startsWith('deleted ')), 'every path of a removed root is deleted');
    assert.deepEqual(shardedGone, ordered);
  });

  it('walks a root given with trailing slashes as the root without them, either way', async () => {
    const root = join(base, 'slashed');
    makeTree(root);
    const paths = (changes: Change[]) => changes.map((x) => x.path.toString('latin1'));
    const run = async (dir: string, sharded: boolean) => {
      const first = await scanOnce(pool, root + '//', dir, { sharded, rulePath: root + '//' });
      const again = await scanOnce(pool, root + '/', dir, { sharded, rulePath: root + '//' });
      return { paths: paths(first.changes).sort(), again: paths(again.changes) };
    };
    const ordered = await run(join(base, 'slashed-ordered'), false);
    const sharded = await run(join(base, 'slashed-sharded'), true);
    assert.ok(ordered.paths.includes(root) && ordered.paths.every((p) => !p.includes('//')), 'no doubled slashes');
    assert.deepEqual(sharded.paths, ordered.paths);
    assert.deepEqual(ordered.again, [], 'the same root with one slash finds nothing new');
    assert.deepEqual(sharded.again, []);
  });

  it('walks a unit whose directory became a file as empty: what was below it is deleted, the scan goes on', async () => {
    const root = join(base, 'replaced');
    mkdirSync(root);
    writeFileSync(join(root, 'was-a-dir'), 'now a file');
    const gone = Buffer.from(join(root, 'was-a-dir', 'sub', 'x'));
    const temp = openTempStore();
    const store = temp.store;
    try {
      store.journal.record([{ path: gone, kind: 'created', state: readStatStateSync(Buffer.from(root))!, source: 'scan', detectedAt: new Date(0) }]);
      const sub = pathToKey(Buffer.from(join(root, 'was-a-dir', 'sub')));
      const rules = createPathRules([defineRule({ name: 'r', paths: [root] })]);
      const removed: string[] = [];
      const threads = createScanThreads({ threads: 1 });
      await threads
        .run(
          {
            root: Buffer.from(root),
            units: [{ subtree: Buffer.from(join(root, 'was-a-dir', 'sub')), entries: [], start: Buffer.concat([sub, Buffer.of(0)]), end: Buffer.concat([sub, Buffer.of(1)]) }],
            rules: rules.rules,
            store: store.location,
            fullHash: false,
          },
          (c) => {
            for (let i = 0; c.removed && i < c.removed.kinds.length; i++) removed.push(`${c.removed.kinds[i]} ${pathAt(c.removed.paths, i).toString()}`);
          },
        )
        .finally(() => threads.close());
      assert.deepEqual(removed, [`${REMOVED_DELETED} ${gone.toString()}`]);
    } finally {
      await temp.dispose();
    }
  });
});
