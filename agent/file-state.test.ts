import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { classifyChange, readFileState } from './file-state.js';
import { HUGE_SIZE, hugeSparseFile } from '../test/support/sparse-files.js';

const dir = mkdtempSync(join(tmpdir(), 'vigil-fs-'));
const p = (...parts: string[]) => Buffer.from(join(dir, ...parts));
const sha = (data: string | Buffer) => createHash('sha256').update(data).digest();

describe('readFileState on odd files', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('hashes a regular file with SHA-256 and records its stat data', async () => {
    writeFileSync(p('a'), 'hello');
    const s = await readFileState(p('a'));
    assert.equal(s?.type, 'regular');
    assert.deepEqual(s?.sha256, sha('hello'));
    assert.equal(s?.size, 5);
    assert.equal(s?.error, null);
  });

  it('records a symlink and its target without following it', async () => {
    symlinkSync('/etc/shadow-does-not-matter', p('link'));
    const s = await readFileState(p('link'));
    assert.equal(s?.type, 'symlink');
    assert.equal(s?.symlinkTarget?.toString(), '/etc/shadow-does-not-matter');
    assert.equal(s?.sha256, null);
  });

  it('survives a symlink loop', async () => {
    symlinkSync('loop-b', p('loop-a'));
    symlinkSync('loop-a', p('loop-b'));
    assert.equal((await readFileState(p('loop-a')))?.type, 'symlink');
  });

  it('records a FIFO by type and never opens it (opening would block)', async () => {
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    const s = await readFileState(p('fifo'));
    assert.equal(s?.type, 'fifo');
    assert.equal(s?.sha256, null);
  });

  it('records sockets and devices by type', async () => {
    const server = createServer();
    const sock = join(dir, 'sock');
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      assert.equal((await readFileState(Buffer.from(sock)))?.type, 'socket');
    } finally {
      server.close();
    }
    const dev = await readFileState(Buffer.from('/dev/null'));
    assert.equal(dev?.type, 'char_device');
    assert.equal(dev?.sha256, null);
  });

  it('returns null for a path that does not exist (vanished)', async () => {
    assert.equal(await readFileState(p('gone')), null);
    assert.equal(await readFileState(p('a', 'below-a-file')), null);
  });

  it('handles names that are not UTF-8 and names with newlines, as bytes', async () => {
    const name = Buffer.concat([Buffer.from(`${dir}/bad-`), Buffer.from([0xff, 0xfe, 0x0a]), Buffer.from('.txt')]);
    writeFileSync(name, 'odd');
    const s = await readFileState(name);
    assert.deepEqual(s?.sha256, sha('odd'));
  });

  it('streams a sparse file over 4 GiB without holding it in memory', async (t) => {
    const big = hugeSparseFile(t, dir);
    const before = process.memoryUsage().rss;
    const s = await readFileState(Buffer.from(big));
    const grown = process.memoryUsage().rss - before;
    assert.equal(s?.size, HUGE_SIZE);
    // SHA-256 of the zeros, computed independently by coreutils.
    const expected = execFileSync('sha256sum', [big]).toString().split(' ')[0];
    assert.equal(s?.sha256?.toString('hex'), expected);
    assert.ok(grown < 200 * 1024 * 1024, `RSS grew by ${grown} bytes`);
  });

  it('reports permission denied as an error state with the stat data (as an unprivileged user)', () => {
    const secret = join(dir, 'secret');
    writeFileSync(secret, 'top secret');
    chmodSync(secret, 0o000);
    chmodSync(dir, 0o755);
    const moduleUrl = new URL('./file-state.js', import.meta.url).href;
    const script = `import(${JSON.stringify(moduleUrl)}).then(async (m) => { const s = await m.readFileState(Buffer.from(${JSON.stringify(secret)})); process.stdout.write(JSON.stringify({ type: s.type, error: s.error, size: s.size, sha: s.sha256 })); });`;
    const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    const res = spawnSync(process.execPath, ['-e', script], { ...asNobody, cwd: '/', encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
    assert.deepEqual(JSON.parse(res.stdout), { type: 'regular', error: 'EACCES', size: 10, sha: null });
    void fileURLToPath;
  });
});

describe('classifyChange', () => {
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

mkdirSync(dir, { recursive: true });
