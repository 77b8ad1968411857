import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, symlinkSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readStatStateSync } from '../file-state.js';
import { compareBatch, DIFFERENT } from '../scan/hash-worker.js';
import { packPaths } from '../scan/path-batch.js';
import { encodeState } from '../store/state-codec.js';
import { waitFor } from '../../test/support/processes.js';
import { HUGE_SIZE, hugeSparseFile } from '../../test/support/sparse-files.js';
import { hashInto, hashOne, READ_BYTES, readPathState } from './hash-file.js';
import { createResults, unpackResults } from './hash-results.js';

const dir = mkdtempSync(join(tmpdir(), 'vigil-hash-'));
const p = (...parts: string[]) => Buffer.from(join(dir, ...parts));
const sha = (data: string | Buffer) => createHash('sha256').update(data).digest();

after(() => rmSync(dir, { recursive: true, force: true }));

describe('reading a path as a real-time check does (lstat first): odd files', () => {

  it('hashes a regular file with SHA-256 and records its stat data', () => {
    writeFileSync(p('a'), 'hello');
    const s = readPathState(p('a'));
    assert.equal(s?.type, 'regular');
    assert.deepEqual(s?.sha256, sha('hello'));
    assert.equal(s?.size, 5);
    assert.equal(s?.error, null);
  });

  it('records a symlink and its target without following it', () => {
    symlinkSync('/etc/shadow-does-not-matter', p('link'));
    const s = readPathState(p('link'));
    assert.equal(s?.type, 'symlink');
    assert.equal(s?.symlinkTarget?.toString(), '/etc/shadow-does-not-matter');
    assert.equal(s?.sha256, null);
  });

  it('survives a symlink loop', () => {
    symlinkSync('loop-b', p('loop-a'));
    symlinkSync('loop-a', p('loop-b'));
    assert.equal((readPathState(p('loop-a')))?.type, 'symlink');
  });

  it('records a FIFO by type and never opens it (opening would block)', () => {
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    const s = readPathState(p('fifo'));
    assert.equal(s?.type, 'fifo');
    assert.equal(s?.sha256, null);
  });

  it('records sockets and devices by type', async () => {
    const server = createServer();
    const sock = join(dir, 'sock');
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      assert.equal((readPathState(Buffer.from(sock)))?.type, 'socket');
    } finally {
      server.close();
    }
    const dev = readPathState(Buffer.from('/dev/null'));
    assert.equal(dev?.type, 'char_device');
    assert.equal(dev?.sha256, null);
  });

  it('returns null for a path that does not exist (vanished)', () => {
    assert.equal(readPathState(p('gone')), null);
    assert.equal(readPathState(p('a', 'below-a-file')), null);
  });

  it('handles names that are not UTF-8 and names with newlines, as bytes', () => {
    const name = Buffer.concat([Buffer.from(`${dir}/bad-`), Buffer.from([0xff, 0xfe, 0x0a]), Buffer.from('.txt')]);
    writeFileSync(name, 'odd');
    const s = readPathState(name);
    assert.deepEqual(s?.sha256, sha('odd'));
  });

  it('reports permission denied as an error state with the stat data (as an unprivileged user)', () => {
    const secret = join(dir, 'secret');
    writeFileSync(secret, 'top secret');
    chmodSync(secret, 0o000);
    chmodSync(dir, 0o755);
    const moduleUrl = new URL('./hash-file.js', import.meta.url).href;
    const script = `import(${JSON.stringify(moduleUrl)}).then((m) => { const s = m.readPathState(Buffer.from(${JSON.stringify(secret)})); process.stdout.write(JSON.stringify({ type: s.type, error: s.error, size: s.size, sha: s.sha256 })); });`;
    const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    const res = spawnSync(process.execPath, ['-e', script], { ...asNobody, cwd: '/', encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
    assert.deepEqual(JSON.parse(res.stdout), { type: 'regular', error: 'EACCES', size: 10, sha: null });
  });
});

describe('reading a file (the rules of hash-file.ts)', () => {
  it('reads every byte to the end, whatever the size fstat gives (0 on procfs)', () => {
    const sizes = [0, 1, READ_BYTES - 1, READ_BYTES, READ_BYTES + 1, 3 * READ_BYTES];
    for (const size of sizes) {
      const p = join(dir, `sized-${size}`);
      writeFileSync(p, Buffer.alloc(size, size % 251));
      const r = hashOne(Buffer.from(p), 'sha256', 0);
      assert.ok(r.kind === 'hashed', `${size}: ${r.kind}`);
      assert.equal(r.bytes, size);
      assert.deepEqual(Buffer.from(r.digest!), createHash('sha256').update(Buffer.alloc(size, size % 251)).digest(), `digest of ${size} bytes`);
    }
    // A sparse file: its holes read as zeros.
    const sparse = join(dir, 'sparse');
    writeFileSync(sparse, '');
    truncateSync(sparse, 5 << 20);
    const s = hashOne(Buffer.from(sparse), 'sha256', 0);
    assert.ok(s.kind === 'hashed' && s.bytes === 5 << 20);
    assert.deepEqual(Buffer.from(s.digest!), createHash('sha256').update(Buffer.alloc(5 << 20)).digest());
    const proc = '/proc/self/cmdline';
    assert.equal(statSync(proc).size, 0, 'procfs reports size 0');
    const r = hashOne(Buffer.from(proc), 'sha256', 0);
    assert.ok(r.kind === 'hashed');
    const content = readFileSync(proc);
    assert.ok(content.length > 0);
    assert.equal(r.bytes, content.length);
    assert.deepEqual(Buffer.from(r.digest!), createHash('sha256').update(content).digest());
  });

  // Was two tests, one per implementation (real-time with 1 MiB reads, scan with 256 KiB): one now.
  it('streams a sparse file over 4 GiB without holding it in memory', (t) => {
    const big = hugeSparseFile(t, dir);
    const before = process.memoryUsage().rss;
    const r = hashOne(Buffer.from(big), 'sha256', 0);
    const grown = process.memoryUsage().rss - before;
    assert.ok(r.kind === 'hashed');
    assert.equal(r.bytes, HUGE_SIZE);
    assert.equal(r.stat.size, HUGE_SIZE);
    // SHA-256 of as many zeros, fed from memory (no file, no read loop). (The real-time copy of
    // this test had coreutils' sha256sum compute it: the same digest, three times slower.)
    const zeros = Buffer.alloc(1 << 24);
    const expected = createHash('sha256');
    for (let left = HUGE_SIZE; left > 0; left -= zeros.length) expected.update(left >= zeros.length ? zeros : zeros.subarray(0, left));
    assert.deepEqual(Buffer.from(r.digest!), expected.digest());
    assert.ok(grown < 64 * 1024 * 1024, `RSS grew by ${grown} bytes`);
  });

  it('a file that never stops growing is read three times at most, and read again by the next re-check', async () => {
    const grow = join(dir, 'growing');
    writeFileSync(grow, Buffer.alloc(32 << 20, 1));
    // Another process appends without pause while the file is read (three tries).
    const writer = spawn('sh', ['-c', `while :; do printf x >> '${grow}'; done`], { stdio: 'ignore' });
    try {
      await waitFor('the writer to append', () => statSync(grow).size > 32 << 20, 10_000, 5);
      const r = hashOne(Buffer.from(grow), 'sha256', 0);
      assert.ok(r.kind === 'hashed');
      writer.kill('SIGKILL');
      await new Promise((resolve) => writer.once('exit', resolve));
      const state = encodeState({ ...readStatStateSync(Buffer.from(grow))!, ...r.stat, sha256: Buffer.from(r.digest!) });
      assert.ok(r.stat.size < statSync(grow).size, 'the recorded size is from before a read, not the final one');
      const [verdict] = compareBatch({ paths: packPaths([Buffer.from(grow)]), known: packPaths([state]), algorithms: ['sha256'] });
      assert.equal(verdict, DIFFERENT, 'the next re-check reads it again');
    } finally {
      writer.kill('SIGKILL');
    }
  });


  it('reads a held descriptor from its start, each time, even once its path is gone; never reads what is not a regular file', () => {
    const file = join(dir, 'held');
    writeFileSync(file, 'held content');
    const fd = openSync(file, 'r');
    unlinkSync(file);
    const readHeld = (held: number, maxBytes = 0) => {
      const out = createResults(1, ['sha256']);
      hashInto(out, 0, held, 'sha256', maxBytes, 0);
      return unpackResults(out)[0]!;
    };
    try {
      for (const round of [1, 2]) {
        const r = readHeld(fd);
        assert.ok(r.kind === 'hashed', `round ${round}: ${r.kind}`);
        assert.deepEqual(Buffer.from(r.digest!), sha('held content'), `round ${round}: from offset 0`);
        assert.equal(r.stat.nlink, 0, 'unlinked');
      }
      const over = readHeld(fd, 4);
      assert.ok(over.kind === 'hashed' && over.digest === null && over.stat.size === 12, 'over its max size: stat only');
    } finally {
      closeSync(fd);
    }
    execFileSync('mkfifo', [join(dir, 'held-fifo')]);
    const fifo = openSync(join(dir, 'held-fifo'), 'r+'); // r+: opening a FIFO read-only would block here
    try {
      const r = readHeld(fifo);
      assert.ok(r.kind === 'state' && r.state.type === 'fifo' && r.state.sha256 === null, 'its fstat state, not read (a read would block)');
    } finally {
      closeSync(fifo);
    }
  });

  it('reads a real-time path the same way: over its max size, the stat without a digest', () => {
    writeFileSync(p('sized'), 'x'.repeat(100));
    const s = readPathState(p('sized'), { maxBytes: 10 });
    assert.equal(s?.type, 'regular');
    assert.equal(s?.size, 100);
    assert.equal(s?.sha256, null);
    assert.deepEqual(readPathState(p('sized'), { maxBytes: 100 })?.sha256, sha('x'.repeat(100)));
  });
});
