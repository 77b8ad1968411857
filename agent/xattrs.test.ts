import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseDump, readXattrs, readXattrsSync, unquote, xattrsDigest } from './xattrs.js';

// setfattr takes its path argument as bytes only through a shell-free exec with a latin1 round
// trip, so the odd names are made with a relative path from their directory.
function setfattr(dir: string, name: Buffer, attr: string, value: string): void {
  execFileSync('sh', ['-c', 'cd "$1" && setfattr -n "$2" -v "$3" -- "$(printf "$4")"', 'sh', dir, attr, value, printfEscape(name)]);
}
const printfEscape = (b: Buffer) => [...b].map((c) => '\\' + c.toString(8).padStart(3, '0')).join('');
const u32 = (n: number) => Buffer.from([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
const expectedDigest = (attrs: [string, Buffer][]) =>
  createHash('sha256')
    .update(Buffer.concat(attrs.sort(([a], [b]) => (a < b ? -1 : 1)).flatMap(([n, v]) => [u32(n.length), Buffer.from(n), u32(v.length), v])))
    .digest();

describe('extended attributes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-xattr-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('undoes getfattr quoting: octal bytes and backslashes, raw bytes left alone', () => {
    assert.deepEqual(unquote(Buffer.from('/a\\012b\\\\c')), Buffer.from('/a\nb\\c'));
    assert.deepEqual(unquote(Buffer.from([0x2f, 0xff, 0xfe])), Buffer.from([0x2f, 0xff, 0xfe]));
    const dump = parseDump(Buffer.from('# file: /x\\012y\nuser.a=0x0001\nuser.empty\n\n# file: /z\nsecurity.capability=0x01\n'));
    assert.deepEqual(dump.get('/x\ny'), [
      [Buffer.from('user.a'), Buffer.from([0, 1])],
      [Buffer.from('user.empty'), Buffer.alloc(0)],
    ]);
    assert.equal(dump.get('/z')?.length, 1);
  });

  it('digests every attribute of files with odd names, one getfattr for them all; none: the empty digest; missing: null', async () => {
    const newline = Buffer.from('new\nline');
    const latin1 = Buffer.from([0x66, 0xff, 0xfe]);
    const plain = Buffer.from('plain');
    for (const n of [newline, latin1, plain]) writeFileSync(Buffer.concat([Buffer.from(dir + '/'), n]), 'x');
    setfattr(dir, newline, 'user.one', '1');
    setfattr(dir, latin1, 'user.b', 'bee');
    setfattr(dir, latin1, 'user.a', 'ay');
    const paths = [newline, latin1, plain, Buffer.from('missing')].map((n) => Buffer.concat([Buffer.from(dir + '/'), n]));
    const sync = readXattrsSync(paths);
    assert.deepEqual(sync[0], expectedDigest([['user.one', Buffer.from('1')]]));
    assert.deepEqual(sync[1], expectedDigest([['user.b', Buffer.from('bee')], ['user.a', Buffer.from('ay')]]));
    assert.deepEqual(sync[2], createHash('sha256').digest());
    assert.equal(sync[3], null, 'a path getfattr could not read is not read, not "no attributes"');
    assert.deepEqual(await readXattrs(paths), sync, 'the async reader agrees');
    assert.deepEqual(xattrsDigest([[Buffer.from('user.a'), Buffer.from('ay')], [Buffer.from('user.b'), Buffer.from('bee')]]), sync[1], 'order does not matter');
  });

  it('without getfattr on the host: every path "not read" (null), never "no attributes"', () => {
    const file = join(dir, 'has-one');
    writeFileSync(file, 'x');
    setfattr(dir, Buffer.from('has-one'), 'user.k', 'v');
    // A PATH with xargs and nothing else: getfattr is not found (xargs exits 127).
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    symlinkSync(execFileSync('sh', ['-c', 'command -v xargs']).toString().trim(), join(bin, 'xargs'));
    const moduleUrl = new URL('./xattrs.js', import.meta.url).href;
    const script = `import { readXattrsSync, readXattrs } from ${JSON.stringify(moduleUrl)};
      const paths = [Buffer.from(${JSON.stringify(file)})];
      console.log(JSON.stringify([readXattrsSync(paths), await readXattrs(paths)]));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { env: { PATH: bin }, cwd: fileURLToPath(new URL('.', import.meta.url)) });
    assert.deepEqual(JSON.parse(out.toString()), [[null], [null]]);
  });
});
