import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { comparePathKeys, keyToPath, pathToKey } from './path-key.js';

describe('path keys', () => {
  it('compares paths exactly as their keys compare (random paths with slashes and high bytes)', () => {
    const alphabet = Buffer.from([0x2f, 0x2e, 0x2d, 0x30, 0x41, 0x61, 0x7f, 0x80, 0xff]);
    const randomPath = () => Buffer.from([...randomBytes(1 + (randomBytes(1)[0]! % 8))].map((b) => alphabet[b % alphabet.length]!));
    for (let i = 0; i < 5000; i++) {
      const a = randomPath();
      const b = i % 7 === 0 ? Buffer.concat([a, randomPath()]) : randomPath();
      const expected = Math.sign(Buffer.compare(pathToKey(a), pathToKey(b)));
      assert.equal(Math.sign(comparePathKeys(a, b)), expected, `${a.toString('hex')} vs ${b.toString('hex')}`);
      // A stored key against a walked path (the scan's merge with its baseline): the same order.
      assert.equal(Math.sign(comparePathKeys(pathToKey(a), b)), expected, `key ${a.toString('hex')} vs ${b.toString('hex')}`);
      assert.deepEqual(keyToPath(pathToKey(a)), a);
    }
  });

  it("orders a directory's contents before its later siblings, like the sorted walk", () => {
    const sorted = ['/a', '/a/b', '/a/b/c', '/a.b', '/a0'].map((p) => Buffer.from(p));
    const shuffled = [...sorted].reverse().sort(comparePathKeys);
    assert.deepEqual(shuffled, sorted);
  });
});
