import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { tempRoot } from '../../test/support/controllers.js';
import { watchTrees, type TreeWatcher, type WatchGap } from './tree-watcher.js';

/** A watcher over one root that keeps what it reported, and waits for a condition on it. */
async function watchOne(root: string, opts: { maxWatches?: number; coalesceMs?: number } = {}) {
  const batches: string[][] = [];
  const gaps: WatchGap[] = [];
  let wake: (() => void) | null = null;
  const poke = () => wake?.();
  const watcher: TreeWatcher = await watchTrees({
    roots: [Buffer.from(root)],
    logger: pino({ level: 'silent' }),
    onPaths: (reports) => {
      batches.push(reports.map((r) => r.path.toString('latin1')));
      poke();
    },
    onGap: (g) => {
      gaps.push(g);
      poke();
    },
    ...opts,
  });
  const seen = () => new Set(batches.flat());
  const until = async (what: string, done: () => boolean, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; seen ${JSON.stringify(batches)}`);
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 200).unref();
      });
    }
  };
  let sentinels = 0;
  /**
   * Makes a new file in `dir` (a watched directory) and waits until the watcher reports it. inotify
   * queues events in order and the watcher reports a path in the window its event is read in (only
   * a rename's away half may wait one window more, and the callers make none), so once the sentinel
   * is reported, everything done before it has been reported too: what is not in `batches` then
   * was never going to be.
   */
  const settle = async (dir: string) => {
    const sentinel = join(dir, `.sentinel-${++sentinels}`);
    writeFileSync(sentinel, '');
    await until(`the sentinel ${sentinel}`, () => seen().has(sentinel));
  };
  return { watcher, batches, gaps, seen, until, settle };
}

describe('tree watcher (inotify)', () => {
  const tmp = tempRoot('vigil-watch-');
  after(() => tmp.remove());

  it('reports changes anywhere below the root, in directories made after it started, with exact name bytes', async () => {
    const root = join(tmp.root, 'a');
    mkdirSync(root);
    const w = await watchOne(root);
    try {
      // A directory and a file in it at once: the file is made before the directory's watch exists.
      mkdirSync(join(root, 'new', 'deeper'), { recursive: true });
      writeFileSync(join(root, 'new', 'deeper', 'early.txt'), 'x');
      const odd = Buffer.concat([Buffer.from(`${root}/new/`), Buffer.from([0x66, 0xff, 0x0a, 0x67])]);
      await w.until('the new directories', () => w.seen().has(`${root}/new`));
      await w.until('watches on them', () => w.watcher.watchCount() === 3);
      writeFileSync(odd, 'non-UTF-8 name');
      writeFileSync(join(root, 'new', 'deeper', 'late.txt'), 'y');
      await w.until('the later files', () => w.seen().has(odd.toString('latin1')) && w.seen().has(`${root}/new/deeper/late.txt`));
      rmSync(join(root, 'new', 'deeper', 'late.txt'));
      await w.until('the deletion', () => w.batches.slice(-3).flat().includes(`${root}/new/deeper/late.txt`) && w.batches.flat().filter((p) => p.endsWith('late.txt')).length >= 2);
      assert.deepEqual(w.gaps, []);
      assert.deepEqual(w.watcher.unwatched(), []);
    } finally {
      await w.watcher.close();
    }
  });

  it('coalesces a burst on one file into one report', async () => {
    const root = join(tmp.root, 'burst');
    mkdirSync(root);
    const file = join(root, 'log');
    writeFileSync(file, '');
    const w = await watchOne(root, { coalesceMs: 50 });
    try {
      // One synchronous burst: every event is in the kernel's queue before the loop reads any.
      for (let i = 0; i < 200; i++) appendFileSync(file, `line ${i}\n`);
      await w.until('the burst', () => w.seen().has(file));
      await w.settle(root); // a later window would show a second report before the sentinel's
      assert.equal(w.batches.flat().filter((p) => p === file).length, 1);
      assert.equal(readFileSync(file, 'utf8').split('\n').length, 201);
    } finally {
      await w.watcher.close();
    }
  });

  it('follows directories moved out of and into the tree', async () => {
    const root = join(tmp.root, 'moves');
    const outside = join(tmp.root, 'outside');
    mkdirSync(join(root, 'd1', 'd2'), { recursive: true });
    mkdirSync(join(outside, 'e1'), { recursive: true });
    const w = await watchOne(root);
    try {
      assert.equal(w.watcher.watchCount(), 3);
      renameSync(join(root, 'd1'), join(tmp.root, 'gone'));
      await w.until('the move out', () => w.seen().has(`${root}/d1`) && w.watcher.watchCount() === 1);
      renameSync(outside, join(root, 'in'));
      await w.until('the move in', () => w.seen().has(`${root}/in`) && w.watcher.watchCount() === 3);
      writeFileSync(join(root, 'in', 'e1', 'f'), 'z');
      await w.until('a change inside what moved in', () => w.seen().has(`${root}/in/e1/f`));
      writeFileSync(join(tmp.root, 'gone', 'd2', 'f'), 'not ours');
      await w.settle(root); // a report of that write would come before the sentinel's
      assert.ok(![...w.seen()].some((p) => p.includes('/gone/')), 'nothing is reported from what moved out');
    } finally {
      await w.watcher.close();
    }
  });

  it('reports a directory it cannot watch as a gap and lists it as scheduled only', async () => {
    const root = join(tmp.root, 'limit');
    mkdirSync(join(root, 'one'), { recursive: true });
    const w = await watchOne(root, { maxWatches: 2 });
    try {
      assert.equal(w.watcher.watchCount(), 2);
      mkdirSync(join(root, 'two'));
      await w.until('the gap', () => w.gaps.length === 1);
      assert.equal(w.gaps[0]!.reason, 'watch_failed');
      assert.equal(w.gaps[0]!.root.toString(), join(root, 'two'));
      assert.match(w.gaps[0]!.detail, /watch limit/);
      assert.deepEqual(w.watcher.unwatched(), [`${join(root, 'two')} (watch limit reached (fs.inotify.max_user_watches))`]);
    } finally {
      await w.watcher.close();
    }
  });

  it('past the watch limit, reports the directories of one tree it cannot watch as one gap that lists them', async () => {
    const root = join(tmp.root, 'many');
    for (const d of ['a/deep', 'b', 'c', 'd']) mkdirSync(join(root, d), { recursive: true });
    const w = await watchOne(root, { maxWatches: 2 });
    try {
      assert.equal(w.watcher.watchCount(), 2);
      mkdirSync(join(root, 'new/x/y'), { recursive: true });
      await w.until('the gaps', () => w.gaps.length === 2);
      // At start: the root and one directory watched, three refused, one gap for the tree.
      const [first, second] = w.gaps;
      assert.equal(first!.root.toString(), root);
      assert.match(first!.detail, /^3 directories not watched \(watch limit reached/);
      assert.equal(first!.dirs?.length, 3);
      const refused = first!.dirs!.map((d) => d.toString());
      assert.ok(!refused.some((d) => refused.some((o) => o !== d && d.startsWith(`${o}/`))), 'no refused directory is below another');
      // A directory made later, with what is below it: only its top is refused, a gap of its own.
      assert.deepEqual(second!.dirs?.map(String), [join(root, 'new')]);
      assert.equal(w.watcher.unwatched().length, 4);
    } finally {
      await w.watcher.close();
    }
  });

  it('reports a kernel queue overflow as a gap on the root', { timeout: 60_000 }, async () => {
    const root = join(tmp.root, 'flood');
    mkdirSync(root);
    const w = await watchOne(root);
    try {
      // The loop is blocked while a shell makes 12,000 files: 24,000 events (create, close) wait
      // in a kernel queue that holds fs.inotify.max_queued_events (16,384 by default).
      const max = Number(readFileSync('/proc/sys/fs/inotify/max_queued_events', 'utf8'));
      const files = Math.ceil(max / 2) + 4000;
      execFileSync('sh', ['-c', `cd "$1" && i=0; while [ $i -lt ${files} ]; do : > f$i; i=$((i+1)); done`, 'sh', root]);
      await w.until('the overflow gap', () => w.gaps.some((g) => g.reason === 'overflow'));
      const gap = w.gaps.find((g) => g.reason === 'overflow')!;
      assert.equal(gap.root.toString(), root);
      assert.match(gap.detail, /overflow/);
    } finally {
      await w.watcher.close();
    }
  });
});
