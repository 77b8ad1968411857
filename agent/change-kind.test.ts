import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { classifyChange, deltaKind } from './change-kind.js';
import { GROUP_R } from '../core/policy-defaults.js';

const sha = (data: string | Buffer) => createHash('sha256').update(data).digest();

/** One regular file's state; each case changes what it tests. */
const base = {
  type: 'regular' as const,
  size: 1,
  mode: 0o100644,
  uid: 0,
  gid: 0,
  mtimeNs: 1n,
  ctimeNs: 1n,
  inode: 1n,
  nlink: 1,
  sha256: sha('a'),
  symlinkTarget: null,
  error: null,
};

describe('classifyChange', () => {
  it('tells created, deleted, modified, attributes and no change apart', () => {
    assert.equal(classifyChange(null, base), 'created');
    assert.equal(classifyChange(base, null), 'deleted');
    assert.equal(classifyChange(base, { ...base, sha256: sha('b') }), 'modified');
    assert.equal(classifyChange(base, { ...base, mode: 0o100600 }), 'attributes');
    assert.equal(classifyChange(base, { ...base, uid: 1000 }), 'attributes');
    assert.equal(classifyChange(base, { ...base, ctimeNs: 2n }), 'attributes', 'ctime is in group R, as in AIDE');
    assert.equal(classifyChange(base, { ...base, ctimeNs: 2n }, ['type', 'perm', 'owner', 'group', 'size', 'hash']), null, 'not when the rule leaves ctime out');
    assert.equal(classifyChange(base, { ...base, type: 'symlink' }), 'modified');
    // L: no content; > (growing): a log may grow, not shrink.
    const L = ['type', 'perm', 'inode', 'nlink', 'owner', 'group'] as const;
    assert.equal(classifyChange(base, { ...base, sha256: sha('b'), size: 2 }, L), null);
    assert.equal(classifyChange(base, { ...base, mode: 0o100600 }, L), 'attributes');
    const grow = [...L, 'growing'] as const;
    assert.equal(classifyChange(base, { ...base, size: 5, sha256: sha('longer') }, grow), null);
    assert.equal(classifyChange({ ...base, size: 5 }, { ...base, size: 1 }, grow), 'modified', 'a log that shrank');
    assert.equal(classifyChange(base, { ...base, sha256: null }, []), null, 'E: existence only');
    assert.equal(classifyChange(base, null, []), 'deleted');
    const d = { ...base, type: 'directory' as const, sha256: null };
    assert.equal(classifyChange(d, { ...d, size: 4096, mtimeNs: 9n }), null, 'a directory changes with its entries');
  });
});

describe('deltaKind', () => {
  it('records a change as classifyChange says, a difference the rule ignores as refreshed, and nothing else', () => {
    assert.equal(deltaKind(null, base), 'created');
    assert.equal(deltaKind(base, null), 'deleted');
    assert.equal(deltaKind(null, null), null);
    assert.equal(deltaKind(base, { ...base, sha256: sha('b') }), 'modified');
    assert.equal(deltaKind(base, { ...base }), null, 'the same state: nothing to record');
    // A log under L+growing that grew: not a change, but the baseline follows the disk.
    const grow = ['type', 'perm', 'inode', 'nlink', 'owner', 'group', 'growing'] as const;
    assert.equal(deltaKind(base, { ...base, size: 5, sha256: sha('longer'), mtimeNs: 2n }, grow), 'refreshed');
    assert.equal(deltaKind(base, { ...base, ctimeNs: 2n }, ['type', 'perm']), 'refreshed', 'a ctime the rule leaves out');
    assert.equal(deltaKind(base, { ...base, ctimeNs: 2n }), 'attributes', 'the default is group R');
    assert.equal(deltaKind(base, { ...base, ctimeNs: 2n }, GROUP_R), 'attributes');
  });
});
