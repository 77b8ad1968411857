import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createSerialWork } from './serial-work.js';

describe('serial work', () => {
  it('runs jobs one at a time in queue order, goes on after a failure, and says when it is busy', async () => {
    const work = createSerialWork();
    const log: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const a = work.run(async () => {
      log.push('a start');
      await gate;
      log.push('a end');
      return 'a';
    });
    const b = work.run(async () => {
      log.push('b');
      throw new Error('b failed');
    });
    const c = work.run(async () => {
      log.push('c');
      return 'c';
    });
    assert.equal(work.busy(), true);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(log, ['a start'], 'b waits for a');
    assert.equal(work.started(), 1);
    release();
    assert.equal(await a, 'a');
    await assert.rejects(b, /b failed/);
    assert.equal(await c, 'c');
    assert.deepEqual(log, ['a start', 'a end', 'b', 'c']);
    assert.equal(work.started(), 3);
    await new Promise((r) => setImmediate(r));
    assert.equal(work.busy(), false);
  });
});
