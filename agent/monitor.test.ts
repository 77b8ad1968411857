import { DEFAULT_LIMITS, defineRule } from '../core/policy-schema.js';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import type { ChangeKind, FileDelta } from '../core/model.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openTempStore } from '../test/support/temp-store.js';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { createMonitor } from './monitor.js';
import { createHashPool } from './scan/hash-pool.js';
import { setXattr } from '../test/support/xattrs.js';
import { attributesJson, changedAttributes } from '../core/xattr-encoding.js';

describe('monitor', () => {
  const root = mkdtempSync(join(tmpdir(), 'vigil-mon-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  it('counts the jobs it starts and is busy exactly while one runs or waits (what the idle memory release watches)', async () => {
    const temp = openTempStore();
    const store = temp.store;
    const pool = createHashPool({ threads: 1 });
    const monitor = createMonitor({ store, pool, logger: pino({ level: 'silent' }), clock: () => new Date() });
    const settled = () => new Promise((r) => setImmediate(r));
    try {
      assert.equal(monitor.busy(), false);
      const startedBefore = monitor.jobsStarted();
      const a = monitor.check([]);
      const b = monitor.rescan(false);
      assert.equal(monitor.busy(), true, 'busy as soon as work is queued');
      await Promise.all([a, b]);
      await settled();
      assert.equal(monitor.busy(), false, 'not busy once every job has settled');
      assert.equal(monitor.jobsStarted(), startedBefore + 2);
      // A job that fails leaves the monitor not busy either.
      await assert.rejects(monitor.applyPolicy(null as never));
      await settled();
      assert.equal(monitor.busy(), false);
      assert.equal(monitor.jobsStarted(), startedBefore + 3);
    } finally {
      await monitor.close();
      await pool.close();
      await temp.dispose();
    }
  });

  it('walks into a directory one rule excludes when another rule covers a path below it', async () => {
    const etc = join(root, 'etc');
    mkdirSync(join(etc, 'ssl', 'private'), { recursive: true });
    writeFileSync(join(etc, 'hosts'), 'h');
    writeFileSync(join(etc, 'ssl', 'cert.pem'), 'c');
    writeFileSync(join(etc, 'ssl', 'private', 'key.pem'), 'k');
    const temp = openTempStore();
    const store = temp.store;
    const pool = createHashPool({ threads: 2 });
    const monitor = createMonitor({ store, pool, logger: pino({ level: 'silent' }), clock: () => new Date() });
    try {
      await monitor.applyPolicy({
        version: 1,
        limits: DEFAULT_LIMITS,
        rules: [
          defineRule({ name: 'etc', paths: [etc], exclude: [`${etc}/ssl/**`], alert: false, selector: {} }),
          defineRule({ name: 'keys', paths: [join(etc, 'ssl', 'private')], exclude: [], alert: true, selector: {} }),
        ],
      });
      const paths = store.outbox.pending(0, 100).map((d) => d.path.toString());
      assert.ok(paths.includes(join(etc, 'hosts')));
      assert.ok(paths.includes(join(etc, 'ssl', 'private', 'key.pem')), 'the key under the second rule is baselined');
      assert.ok(!paths.includes(join(etc, 'ssl', 'cert.pem')), 'what the first rule excludes stays out');
      // A re-scan of an unchanged tree finds nothing (no false deletions).
      const again = await monitor.rescan(false);
      assert.equal(again.changes, 0);
    } finally {
      await monitor.close();
      await pool.close();
      await temp.dispose();
    }
  });

  it('reads extended attributes in real time when the rule checks them', { timeout: 20_000 }, async () => {
    const dir = join(root, 'xattrs-live');
    mkdirSync(dir);
    const file = join(dir, 'bin');
    writeFileSync(file, 'binary');
    const temp = openTempStore();
    const store = temp.store;
    const pool = createHashPool({ threads: 2 });
    const monitor = createMonitor({ store, pool, logger: pino({ level: 'silent' }), clock: () => new Date() });
    try {
      // Without ctime (which setting an attribute moves): only the extended attributes can show the change.
      const attributes = ['type', 'perm', 'inode', 'nlink', 'owner', 'group', 'size', 'mtime', 'hash', 'xattrs'] as const;
      await monitor.applyPolicy({ version: 1, limits: DEFAULT_LIMITS, rules: [defineRule({ name: 'live', paths: [dir], attributes: [...attributes], alert: false, selector: {} })] });
      const before = store.baseline.get(Buffer.from(file));
      assert.ok(before?.xattrs, 'the baseline holds the attributes digest');
      const seen = new Promise<FileDelta>((resolve) => {
        const onQueued = (deltas: FileDelta[]) => {
          const d = deltas.find((x) => x.path.toString() === file);
          if (d) {
            monitor.off('queued', onQueued);
            resolve(d);
          }
        };
        monitor.on('queued', onQueued);
      });
      setXattr(file, 'user.vigil', 'tampered');
      const d = await seen;
      assert.equal(d.kind, 'attributes');
      assert.equal(d.source, 'realtime');
      assert.ok(d.state?.xattrs && !d.state.xattrs.equals(before.xattrs), 'a new attributes digest');
    } finally {
      await monitor.close();
      await pool.close();
      await temp.dispose();
    }
  });

  /**
   * Files made and deleted within a millisecond while the agent cannot run (a synchronous loop
   * holds its event loop, as a burst or SIGSTOP would): the check that follows finds every path
   * gone. Each must still be recorded, created then deleted; with write capture, with the content
   * it had. Renamed temporary files are recorded under their final name only.
   */
  for (const captureWrites of [true, false]) {
    it(`records files that vanish before their check (write capture ${captureWrites ? 'on' : 'off'})`, { timeout: 30_000 }, async () => {
      const dir = join(root, `vanish-${captureWrites}`);
      mkdirSync(dir);
      writeFileSync(join(dir, 'kept'), 'kept before\n');
      const temp = openTempStore();
    const store = temp.store;
      const pool = createHashPool({ threads: 1 });
      const monitor = createMonitor({ store, pool, logger: pino({ level: 'silent' }), clock: () => new Date(), captureWrites });
      const byPath = new Map<string, FileDelta[]>();
      monitor.on('queued', (deltas: FileDelta[]) => {
        for (const d of deltas) byPath.set(d.path.toString(), [...(byPath.get(d.path.toString()) ?? []), d]);
      });
      const sha = (text: string) => createHash('sha256').update(text).digest('hex');
      try {
        await monitor.applyPolicy({ version: 1, limits: DEFAULT_LIMITS, rules: [defineRule({ name: 'v', paths: [dir], alert: true, selector: {} })] });
        byPath.clear();
        const count = 100;
        const t0 = Date.now();
        for (let i = 0; i < count; i++) {
          writeFileSync(join(dir, `drop-${i}`), `payload ${i}\n`);
          unlinkSync(join(dir, `drop-${i}`));
        }
        // A baselined file rewritten, then deleted; a temporary file renamed into place.
        writeFileSync(join(dir, 'kept'), 'kept, rewritten\n');
        unlinkSync(join(dir, 'kept'));
        writeFileSync(join(dir, 'final.tmp'), 'atomic save\n');
        renameSync(join(dir, 'final.tmp'), join(dir, 'final'));
        const heldFor = Date.now() - t0;
        const deadline = Date.now() + 20_000;
        const complete = () => [...Array(count).keys()].every((i) => (byPath.get(join(dir, `drop-${i}`))?.length ?? 0) >= 2) && byPath.has(join(dir, 'final')) && (byPath.get(join(dir, 'kept'))?.length ?? 0) >= 2;
        while (!complete() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        const kinds = (p: string) => (byPath.get(p) ?? []).map((d) => d.kind);
        for (let i = 0; i < count; i++) {
          const p = join(dir, `drop-${i}`);
          assert.deepEqual(kinds(p), ['created', 'deleted'] satisfies ChangeKind[], `${p} (the loop held the agent ${heldFor} ms)`);
          const created = byPath.get(p)![0]!;
          if (captureWrites) {
            assert.equal(created.state?.sha256?.toString('hex'), sha(`payload ${i}\n`), 'read through the held descriptor: the content it had');
            assert.equal(created.state?.type, 'regular');
            assert.equal(created.state?.error, null);
          } else {
            assert.equal(created.state?.error, 'vanished', 'marked as not read');
            assert.equal(created.state?.sha256, null);
          }
        }
        assert.deepEqual(kinds(join(dir, 'kept')), ['modified', 'deleted'], 'a baselined file rewritten and deleted: modified, then deleted');
        if (captureWrites) assert.equal(byPath.get(join(dir, 'kept'))![0]!.state?.sha256?.toString('hex'), sha('kept, rewritten\n'));
        assert.deepEqual(kinds(join(dir, 'final')), ['created']);
        assert.equal(byPath.get(join(dir, 'final'))![0]!.state?.sha256?.toString('hex'), sha('atomic save\n'));
        assert.deepEqual(kinds(join(dir, 'final.tmp')), [], 'a temporary file renamed into place is recorded under its final name');
        // Queued in order: created before deleted, each with its own seq; the baseline has none of them.
        for (let i = 0; i < count; i++) {
          const [c, d] = byPath.get(join(dir, `drop-${i}`))!;
          assert.ok(c!.seq > 0 && d!.seq === c!.seq + 1);
          assert.equal(store.baseline.get(Buffer.from(join(dir, `drop-${i}`))), undefined);
        }
      } finally {
        await monitor.close();
        await pool.close();
        await temp.dispose();
      }
    });
  }

  it('is not stopped by a FIFO whose writer closed (nothing the capture opens can block)', { timeout: 20_000 }, async () => {
    const dir = join(root, 'fifo');
    mkdirSync(dir);
    const temp = openTempStore();
    const store = temp.store;
    const pool = createHashPool({ threads: 1 });
    const monitor = createMonitor({ store, pool, logger: pino({ level: 'silent' }), clock: () => new Date(), captureWrites: true });
    const seen = new Set<string>();
    monitor.on('queued', (deltas: FileDelta[]) => deltas.forEach((d) => seen.add(d.path.toString())));
    try {
      await monitor.applyPolicy({ version: 1, limits: DEFAULT_LIMITS, rules: [defineRule({ name: 'f', paths: [dir], alert: false, selector: {} })] });
      const fifo = join(dir, 'pipe');
      execFileSync('mkfifo', [fifo]);
      // Opened for writing (r+ does not block on Linux) and closed: a close-after-write on a FIFO.
      closeSync(openSync(fifo, 'r+'));
      writeFileSync(join(dir, 'after'), 'after the fifo\n');
      const deadline = Date.now() + 10_000;
      while (!(seen.has(fifo) && seen.has(join(dir, 'after'))) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.ok(seen.has(fifo), 'the FIFO is recorded');
      assert.ok(seen.has(join(dir, 'after')), 'and the agent goes on');
    } finally {
      await monitor.close();
      await pool.close();
      await temp.dispose();
    }
  });

  it('records the values of ACLs and SELinux labels when the rule names acl and selinux, so a change says which changed', { timeout: 20_000 }, async () => {
    const dir = join(root, 'named-attrs');
    mkdirSync(dir);
    const file = join(dir, 'conf');
    writeFileSync(file, 'conf');
    setXattr(file, 'security.selinux', Buffer.from('system_u:object_r:etc_t:s0\0'));
    setXattr(file, 'user.other', 'not named');
    const temp = openTempStore();
    const store = temp.store;
    const pool = createHashPool({ threads: 1 });
    const monitor = createMonitor({ store, pool, logger: pino({ level: 'silent' }), clock: () => new Date() });
    const deltas: FileDelta[] = [];
    monitor.on('queued', (d: FileDelta[]) => deltas.push(...d.filter((x) => x.path.toString() === file)));
    try {
      // Without ctime and xattrs: only the named values can show the change.
      const attributes = ['type', 'perm', 'inode', 'nlink', 'owner', 'group', 'size', 'mtime', 'hash', 'acl', 'selinux'] as const;
      await monitor.applyPolicy({ version: 1, limits: DEFAULT_LIMITS, rules: [defineRule({ name: 'n', paths: [dir], attributes: [...attributes], alert: false, selector: {} })] });
      const baseline = store.baseline.get(Buffer.from(file))!;
      assert.deepEqual(attributesJson(baseline.attrValues!), { 'security.selinux': 'system_u:object_r:etc_t:s0' }, 'only the named attributes, by the scan');
      assert.equal(baseline.xattrs, null, 'no digest of every attribute: the rule does not ask for xattrs');
      setXattr(file, 'security.selinux', Buffer.from('system_u:object_r:shadow_t:s0\0'));
      const deadline = Date.now() + 10_000;
      while (!deltas.some((d) => d.kind === 'attributes') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const changed = deltas.find((d) => d.kind === 'attributes');
      assert.ok(changed, JSON.stringify(deltas.map((d) => d.kind)));
      assert.equal(changed.source, 'realtime');
      assert.deepEqual(changedAttributes(attributesJson(baseline.attrValues!), attributesJson(changed.state!.attrValues!)), ['security.selinux']);
      // The same rule over a scan: a change to user.other is not one of the named ones.
      setXattr(file, 'user.other', 'changed');
      const rescan = await monitor.rescan(true);
      assert.equal(rescan.changes, 0);
    } finally {
      await monitor.close();
      await pool.close();
      await temp.dispose();
    }
  });
});
