import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { setXattr } from '../test/support/xattrs.js';
import { decodeXattrs } from '../core/xattr-encoding.js';
import { ACL_VALUES, readXattrList, readXattrParts, SELINUX_VALUES, XATTRS_DIGEST, xattrsDigest } from './xattrs.js';

const u32 = (n: number) => Buffer.from([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
/** The documented digest, computed independently: SHA-256 over (len, name, len, value) sorted by name. */
const expectedDigest = (attrs: [string, Buffer][]) =>
  createHash('sha256')
    .update(Buffer.concat(attrs.sort(([a], [b]) => (a < b ? -1 : 1)).flatMap(([n, v]) => [u32(n.length), Buffer.from(n), u32(v.length), v])))
    .digest();

describe('extended attributes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-xattr-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const at = (name: Buffer) => Buffer.concat([Buffer.from(dir + '/'), name]);

  it('digests every attribute of files with odd names; none: the empty digest; missing: null', async () => {
    const newline = Buffer.from('new\nline');
    const latin1 = Buffer.from([0x66, 0xff, 0xfe]);
    const plain = Buffer.from('plain');
    for (const n of [newline, latin1, plain]) writeFileSync(at(n), 'x');
    setXattr(at(newline), 'user.one', '1');
    setXattr(at(latin1), 'user.b', 'bee');
    setXattr(at(latin1), 'user.a', 'ay');
    setXattr(at(latin1), 'user.binary', Buffer.from([0, 255, 10]));
    const paths = [newline, latin1, plain, Buffer.from('missing')].map(at);
    const sync = paths.map((p) => readXattrParts(p, XATTRS_DIGEST).xattrs);
    assert.deepEqual(sync[0], expectedDigest([['user.one', Buffer.from('1')]]));
    assert.deepEqual(sync[1], expectedDigest([['user.b', Buffer.from('bee')], ['user.a', Buffer.from('ay')], ['user.binary', Buffer.from([0, 255, 10])]]));
    assert.deepEqual(sync[2], createHash('sha256').digest(), 'no attributes: the digest of the empty list');
    assert.equal(sync[3], null, 'a path that could not be read is "not read", not "no attributes"');
    assert.deepEqual(xattrsDigest([[Buffer.from('user.a'), Buffer.from('ay')], [Buffer.from('user.b'), Buffer.from('bee')], [Buffer.from('user.binary'), Buffer.from([0, 255, 10])]]), sync[1], 'order does not matter');
  });

  it("reads a symlink's own attributes, never its target's", () => {
    const target = at(Buffer.from('target'));
    writeFileSync(target, 't');
    setXattr(target, 'user.on-target', 'yes');
    const link = at(Buffer.from('link'));
    symlinkSync(target, link);
    // Linux allows no user.* attribute on a symlink: its own list is empty.
    assert.deepEqual(readXattrList(link), []);
    assert.deepEqual(readXattrList(target)?.map(([n]) => n.toString()), ['user.on-target']);
  });

  it('reads POSIX ACLs and the other namespaces too, as the getfattr-based reader did (system.posix_acl_access)', () => {
    const file = at(Buffer.from('acl'));
    writeFileSync(file, 'a');
    // An ACL as setfacl stores it: version 2, then (tag, perm, id) entries.
    const entry = (tag: number, perm: number, id: number) => Buffer.from([tag & 255, tag >> 8, perm & 255, perm >> 8, id & 255, (id >> 8) & 255, (id >> 16) & 255, id >>> 24]);
    const acl = Buffer.concat([Buffer.from([2, 0, 0, 0]), entry(0x01, 6, 0xffffffff), entry(0x02, 4, 1234), entry(0x04, 4, 0xffffffff), entry(0x10, 6, 0xffffffff), entry(0x20, 0, 0xffffffff)]);
    setXattr(file, 'system.posix_acl_access', acl);
    const names = readXattrList(file)!.map(([n]) => n.toString());
    assert.ok(names.includes('system.posix_acl_access'), names.join(', '));
    // Named (acl): its value, not only a digest; a digest only when xattrs is asked too.
    setXattr(file, 'user.unrelated', 'x');
    const named = readXattrParts(Buffer.from(file), ACL_VALUES);
    assert.equal(named.xattrs, null);
    assert.deepEqual(decodeXattrs(named.attrValues!).map(([n, v]) => [n.toString(), v]), [['system.posix_acl_access', readXattrList(file)!.find(([n]) => n.toString() === 'system.posix_acl_access')![1]]]);
    const both = readXattrParts(Buffer.from(file), ACL_VALUES | SELINUX_VALUES | XATTRS_DIGEST);
    assert.deepEqual(both.xattrs, xattrsDigest(readXattrList(file)!));
    assert.deepEqual(readXattrParts(Buffer.from(file), SELINUX_VALUES).attrValues, Buffer.alloc(0), 'no label: none of the named attributes, not "not read"');
  });

  it('without the native addon: every path "not read" (null), never "no attributes"', () => {
    const file = at(Buffer.from('has-one'));
    writeFileSync(file, 'x');
    setXattr(file, 'user.k', 'v');
    // The addon is looked up relative to the compiled modules: a copy of them elsewhere has none.
    const copy = mkdtempSync(join(tmpdir(), 'vigil-noaddon-'));
    try {
      mkdirSync(join(copy, 'agent', 'native'), { recursive: true });
      copyFileSync(fileURLToPath(new URL('./xattrs.js', import.meta.url)), join(copy, 'agent', 'xattrs.js'));
      copyFileSync(fileURLToPath(new URL('./native/addon.js', import.meta.url)), join(copy, 'agent', 'native', 'addon.js'));
      mkdirSync(join(copy, 'core'));
      copyFileSync(fileURLToPath(new URL('../core/xattr-encoding.js', import.meta.url)), join(copy, 'core', 'xattr-encoding.js'));
      writeFileSync(join(copy, 'package.json'), '{"type":"module"}');
      const script = `import { readXattrParts, XATTRS_DIGEST } from './agent/xattrs.js';
        console.log(JSON.stringify(readXattrParts(Buffer.from(${JSON.stringify(file.toString())}), XATTRS_DIGEST)));`;
      const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: copy });
      assert.deepEqual(JSON.parse(out.toString()), { xattrs: null, attrValues: null });
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });
});
