import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import hashBatch, { unpackResults } from './hash-worker.js';

describe('hashing worker batches', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-hw-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('pack and unpack every kind of result, with mixed algorithms, exactly', () => {
    writeFileSync(join(dir, 'a'), 'alpha');
    writeFileSync(join(dir, 'b'), 'bravo');
    writeFileSync(join(dir, 'big'), 'x'.repeat(100));
    const paths = [join(dir, 'a'), join(dir, 'b'), join(dir, 'gone'), dir, join(dir, 'big')].map((p) => Buffer.from(p).toString('latin1'));
    const results = unpackResults(
      hashBatch({ paths, algorithms: ['sha256', 'blake2b512', 'sha256', 'sha256', 'sha512'], maxBytes: [0, 0, 0, 0, 10], bytesPerSecond: 0 }),
    );
    const [a, b, gone, aDir, big] = results;
    assert.ok(a?.kind === 'hashed' && b?.kind === 'hashed' && big?.kind === 'hashed');
    assert.deepEqual(a.digest && Buffer.from(a.digest), createHash('sha256').update('alpha').digest());
    assert.deepEqual(b.digest && Buffer.from(b.digest), createHash('blake2b512').update('bravo').digest());
    assert.equal(a.stat.size, 5);
    assert.equal(a.bytes, 5);
    assert.equal(gone?.kind, 'vanished');
    assert.equal(aDir?.kind, 'not_regular');
    assert.equal(big.digest, null, 'over its max size: stat only');
    assert.equal(big.stat.size, 100);
  });
});
