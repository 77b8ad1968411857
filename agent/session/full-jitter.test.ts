import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fullJitter, nextCeiling } from './full-jitter.js';

describe('reconnect backoff with full jitter', () => {
  it('waits anywhere from zero to the ceiling, spread evenly, so a fleet cut off at once does not come back at once', () => {
    const waits = Array.from({ length: 10_000 }, () => fullJitter(1000));
    assert.ok(waits.every((w) => w >= 0 && w < 1000));
    // Ten buckets of 100 ms each hold about a tenth of the fleet (a herd would fill one).
    const buckets = Array.from({ length: 10 }, (_, i) => waits.filter((w) => w >= i * 100 && w < (i + 1) * 100).length);
    assert.ok(buckets.every((n) => n > 800 && n < 1200), `buckets ${buckets.join(', ')}`);
  });

  it('the ends of the window, from the random source', () => {
    assert.equal(fullJitter(15_000, () => 0), 0);
    assert.equal(fullJitter(15_000, () => 0.999_999), 14_999);
  });

  it('the ceiling doubles per failed attempt up to the maximum', () => {
    const ceilings = [1000];
    while (ceilings.length < 6) ceilings.push(nextCeiling(ceilings.at(-1)!, 15_000));
    assert.deepEqual(ceilings, [1000, 2000, 4000, 8000, 15_000, 15_000]);
  });
});
