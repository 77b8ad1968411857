import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { createIdleMemory } from './idle-memory.js';
import { openLocalStore, type Change } from './store/local-store.js';
import { loadNativeAddon } from './native/addon.js';
import { sampleState } from '../test/support/file-states.js';

/** Resident kB of this process's mappings of one file (by inode), from /proc/self/smaps. */
function residentKb(file: string): number {
  const ino = statSync(file).ino;
  let kb = 0;
  let ours = false;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ (\d+)/.exec(line);
    if (head) ours = Number(head[1]) === ino;
    else if (ours && line.startsWith('Rss:')) kb += Number(/(\d+)/.exec(line)![1]);
  }
  return kb;
}

const addon = loadNativeAddon();
const glibc = Boolean((process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime);
const logger = pino({ level: 'silent' });

describe('idle memory', { skip: addon ? false : 'the native addon is not built' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-idle-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('hands the store’s mapped pages back once quiet, and the store reads the same after', async () => {
    const store = openLocalStore(join(dir, 'db'));
    try {
      const now = new Date();
      const path = (i: number) => Buffer.from(`/srv/app/${String(i).padStart(6, '0')}/file-with-a-longer-name`);
      for (let b = 0; b < 20; b++) {
        const changes: Change[] = [];
        for (let i = b * 1000; i < (b + 1) * 1000; i++) changes.push({ path: path(i), kind: 'created', state: sampleState(i % 250), source: 'scan', detectedAt: now });
        store.journal.record(changes);
      }
      // Read every entry back: its pages are resident now.
      let read = 0;
      for (const _ of store.baseline.under(Buffer.from('/srv'))) read++;
      assert.equal(read, 20_000);
      const before = residentKb(store.dataFile);
      assert.ok(before > 2048, `the data file is resident (${before} kB)`);

      let activity = 'a';
      let busy = false;
      const idle = createIdleMemory({ activity: () => activity, busy: () => busy, mappedFiles: [store.dataFile], addon, logger });
      assert.equal(idle.tick(), null, 'the first look sees work (nothing to compare with)');
      activity = 'b';
      assert.equal(idle.tick(), null, 'work since the last look: nothing released');
      busy = true;
      assert.equal(idle.tick(), null, 'busy: nothing released');
      busy = false;
      const released = idle.tick();
      assert.ok(released && released.mappedBytes >= before * 1024, `the mappings were advised (${JSON.stringify(released)})`);
      assert.equal(released.heapTrimmed, glibc, 'malloc_trim ran where the C library is glibc');
      const afterKb = residentKb(store.dataFile);
      assert.ok(afterKb < before / 4, `resident ${before} kB before, ${afterKb} kB after`);
      assert.equal(idle.tick(), null, 'nothing more to release until the agent works again');

      // Nothing was lost: every entry reads back as it was written, and writes go on.
      const one = store.baseline.get(path(12_345));
      assert.deepEqual([one?.size, one?.sha256], [12_345 % 250, sampleState(12_345 % 250).sha256]);
      read = 0;
      for (const e of store.baseline.under(Buffer.from('/srv'))) if (e.state.size === Number(e.path.toString().slice(9, 15)) % 250) read++;
      assert.equal(read, 20_000);
      assert.equal(store.journal.record([{ path: path(0), kind: 'deleted', state: null, source: 'realtime', detectedAt: now }])[0]!.seq, 20_001);

      activity = 'c';
      assert.equal(idle.tick(), null);
      assert.ok(idle.tick(), 'released again after the next quiet interval');
    } finally {
      await store.close();
    }
  });

  it('releases nothing without the addon, and says why when a file cannot be found', () => {
    const none = createIdleMemory({ activity: () => 'x', busy: () => false, mappedFiles: [], addon: null, logger });
    none.tick();
    assert.equal(none.tick(), null);
    assert.equal(addon!.releaseFileMappings(Buffer.from(join(dir, 'no-such-file'))), -constants.errno.ENOENT, 'no such file: -ENOENT');
    writeFileSync(join(dir, 'not-mapped'), 'x');
    assert.equal(addon!.releaseFileMappings(Buffer.from(join(dir, 'not-mapped'))), -constants.errno.ENOENT, 'a file this process has not mapped: -ENOENT');
    assert.throws(() => addon!.releaseFileMappings('not a buffer' as unknown as Buffer), { name: 'TypeError' });
    assert.throws(() => addon!.releaseFileMappings(Buffer.from('a\0b')), { name: 'TypeError' });
  });
});
