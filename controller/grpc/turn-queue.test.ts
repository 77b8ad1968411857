import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createTurnQueue } from './turn-queue.js';

describe('turn queue', () => {
  it('resumes waiters one per event-loop turn, in order, with I/O polled between them', async () => {
    const turns = createTurnQueue();
    const order: string[] = [];
    const busy = (ms: number) => {
      for (const end = performance.now() + ms; performance.now() < end; );
    };
    // Each waiter works 5 ms in its turn: the timer (due after 1 ms) is due by the end of the
    // first, and the loop runs it before resuming the second.
    const waits = ['a', 'b', 'c'].map((name) =>
      turns.wait().then(() => {
        order.push(name);
        busy(5);
      }),
    );
    assert.equal(turns.waiting, 3);
    setTimeout(() => order.push('timer'), 1);
    await Promise.all(waits);
    assert.deepEqual(order.filter((x) => x !== 'timer'), ['a', 'b', 'c']);
    assert.ok(order.indexOf('timer') < order.indexOf('b'), `the timer ran between two turns, not after all three: ${order.join(', ')}`);
    assert.equal(turns.waiting, 0);
  });

  it('a waiter arriving after the queue emptied is resumed too', async () => {
    const turns = createTurnQueue();
    await turns.wait();
    await turns.wait();
    assert.equal(turns.waiting, 0);
  });
});
