import assert from 'node:assert/strict';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { nativeAddon } from '../native/addon.js';
import { SLOT_DTYPE, STAT_SLOTS } from '../native/stat-slots.js';
import { createStatFd } from './stat-fd.js';

describe('statFd', () => {
  const base = mkdtempSync(join(tmpdir(), 'vigil-statfd-'));
  after(() => rmSync(base, { recursive: true, force: true }));
  const native = createStatFd();
  const node = createStatFd({ VIGIL_NATIVE: '0' });

  it('is built (npm run build), and VIGIL_NATIVE=0 turns it off', () => {
    assert.ok(nativeAddon(), 'the native addon is built');
    assert.equal(nativeAddon({ VIGIL_NATIVE: '0' }), null);
    assert.notEqual(native, node);
  });

  it('writes the same words as fstatSync, at the offset asked, and leaves the d_type word alone', () => {
    const file = join(base, 'file');
    writeFileSync(file, Buffer.alloc(70_000, 1));
    mkdirSync(join(base, 'dir'));
    for (const [path, flags] of [
      [file, 'r'],
      [join(base, 'dir'), 'r'],
      ['/dev/null', 'r'],
    ] as const) {
      const fd = openSync(path, flags);
      try {
        const a = new Uint32Array(3 * STAT_SLOTS).fill(7);
        const b = new Uint32Array(3 * STAT_SLOTS).fill(7);
        native(fd, a, STAT_SLOTS);
        node(fd, b, STAT_SLOTS);
        assert.deepEqual(a, b, path);
        assert.deepEqual([...a.subarray(0, STAT_SLOTS)], new Array(STAT_SLOTS).fill(7), 'nothing before the offset');
        assert.deepEqual([...a.subarray(2 * STAT_SLOTS)], new Array(STAT_SLOTS).fill(7), 'nothing after the slots');
        assert.equal(a[STAT_SLOTS + SLOT_DTYPE], 7);
      } finally {
        closeSync(fd);
      }
    }
  });

  it('throws an error with the errno code for a bad descriptor, and a TypeError for bad arguments', () => {
    const fd = openSync(join(base, 'file'), 'r');
    closeSync(fd);
    for (const statFd of [native, node]) assert.throws(() => statFd(fd, new Uint32Array(STAT_SLOTS), 0), { code: 'EBADF' });
    const raw = nativeAddon()!.statFd;
    assert.throws(() => raw(0, new Uint32Array(STAT_SLOTS - 1), 0), TypeError);
    assert.throws(() => raw(0, new Uint32Array(STAT_SLOTS), 1), TypeError);
    assert.throws(() => raw(0, new Int32Array(STAT_SLOTS) as unknown as Uint32Array, 0), TypeError);
    assert.throws(() => raw('0' as unknown as number, new Uint32Array(STAT_SLOTS), 0), TypeError);
  });
});
