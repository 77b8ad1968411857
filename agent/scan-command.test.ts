import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendFileSync, chmodSync, linkSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { execFileSync } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { runScanCommand } from './scan-command.js';
import { setXattr } from '../test/support/xattrs.js';

const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

async function scan(paths: string[], opts: { stateDir?: string; fullHash?: boolean; policyFile?: string } = {}) {
  const out = new PassThrough();
  const err = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => (text += d.toString()));
  const result = await runScanCommand({ paths, json: true, fullHash: Boolean(opts.fullHash), out, err, threads: 2, ...opts });
  const states = JSON.parse(text) as {
    path: string;
    pathBytes?: string;
    type?: string;
    sha256?: string | null;
    digest?: { algorithm: string; hex: string } | null;
    change: string | null;
    nlink?: number;
    symlinkTarget?: string | null;
    xattrsSha256?: string | null;
  }[];
  return { result, states, by: (p: string) => states.find((s) => s.path === p) };
}

describe('vigil-agent scan', () => {
  const root = mkdtempSync(join(tmpdir(), 'vigil-scancmd-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  it('hashes every regular file (checked independently) and records the rest by type', async () => {
    const t = join(root, 'one');
    mkdirSync(join(t, 'sub'), { recursive: true });
    writeFileSync(join(t, 'a.txt'), 'alpha');
    writeFileSync(join(t, 'sub', 'b.bin'), Buffer.alloc(3 << 20, 7));
    symlinkSync('a.txt', join(t, 'link'));
    symlinkSync('loop2', join(t, 'loop1'));
    symlinkSync('loop1', join(t, 'loop2'));
    const odd = Buffer.concat([Buffer.from(`${t}/x`), Buffer.from([0xff, 0x0a]), Buffer.from('y')]);
    writeFileSync(odd, 'odd');
    const { result, states, by } = await scan([t]);
    assert.equal(by(join(t, 'a.txt'))?.sha256, sha('alpha'));
    assert.equal(by(join(t, 'sub', 'b.bin'))?.sha256, sha(Buffer.alloc(3 << 20, 7)));
    assert.equal(by(join(t, 'link'))?.type, 'symlink');
    assert.equal(by(join(t, 'link'))?.symlinkTarget, 'a.txt');
    assert.equal(by(join(t, 'loop1'))?.type, 'symlink');
    const oddState = states.find((s) => s.pathBytes === odd.toString('base64'));
    assert.equal(oddState?.sha256, sha('odd'), 'a non-UTF-8 name round-trips to the same bytes');
    assert.equal(oddState?.path, `${t}/x\\xff\\x0ay`);
    assert.equal(result.files, states.length);
    assert.ok(states.every((s) => s.change === 'created'));
  });

  it('re-checks against its state directory: unchanged is silent, and each kind of change is reported once', async () => {
    const t = join(root, 'two');
    const state = join(root, 'two-state');
    mkdirSync(join(t, 'd1'), { recursive: true });
    mkdirSync(join(t, 'd2'));
    mkdirSync(join(t, 'turns-into-file'));
    writeFileSync(join(t, 'turns-into-file', 'inner'), 'i');
    writeFileSync(join(t, 'd1', 'moved'), 'm');
    writeFileSync(join(t, 'grows.log'), 'line1\n');
    writeFileSync(join(t, 'solo'), 's');
    writeFileSync(join(t, 'gone'), 'g');
    await scan([t], { stateDir: state });
    const same = await scan([t], { stateDir: state });
    assert.equal(same.result.changes, 0, 'an unchanged tree reports nothing');
    assert.equal(same.result.bytes, 0, 'and reads no content');

    renameSync(join(t, 'd1', 'moved'), join(t, 'd2', 'moved'));
    appendFileSync(join(t, 'grows.log'), 'line2\n');
    linkSync(join(t, 'solo'), join(t, 'solo-link'));
    unlinkSync(join(t, 'gone'));
    rmSync(join(t, 'turns-into-file'), { recursive: true });
    writeFileSync(join(t, 'turns-into-file'), 'now a file');
    const changed = await scan([t], { stateDir: state });
    const kind = (p: string) => changed.by(join(t, p))?.change;
    assert.equal(kind('d1/moved'), 'deleted');
    assert.equal(kind('d2/moved'), 'created');
    assert.equal(kind('grows.log'), 'modified');
    assert.equal(changed.by(join(t, 'grows.log'))?.sha256, sha('line1\nline2\n'));
    assert.equal(kind('solo'), 'attributes', 'a new hard link changes the link count');
    assert.equal(changed.by(join(t, 'solo-link'))?.nlink, 2);
    assert.equal(kind('gone'), 'deleted');
    assert.equal(kind('turns-into-file'), 'modified', 'a directory replaced by a file');
    assert.equal(kind('turns-into-file/inner'), 'deleted');
    assert.equal(changed.by(join(t, 'turns-into-file'))?.type, 'regular');

    // And back: the file becomes a directory again.
    unlinkSync(join(t, 'turns-into-file'));
    mkdirSync(join(t, 'turns-into-file'));
    const back = await scan([t], { stateDir: state });
    assert.equal(back.by(join(t, 'turns-into-file'))?.change, 'modified');
    assert.equal(back.by(join(t, 'turns-into-file'))?.type, 'directory');
  });

  it('--full-hash reads every file again', async () => {
    const t = join(root, 'three');
    mkdirSync(t);
    writeFileSync(join(t, 'f'), 'x'.repeat(1000));
    const state = join(root, 'three-state');
    await scan([t], { stateDir: state });
    const full = await scan([t], { stateDir: state, fullHash: true });
    assert.equal(full.result.bytes, 1000);
    assert.equal(full.result.changes, 0);
  });

  it('applies a policy file: excluded paths are not scanned', async () => {
    const t = join(root, 'four');
    mkdirSync(t);
    writeFileSync(join(t, 'keep.conf'), 'k');
    writeFileSync(join(t, 'skip.swp'), 's');
    const policy = join(root, 'four.yaml');
    writeFileSync(policy, `rules:\n  - name: r\n    paths: [${t}]\n    exclude: ["**/*.swp"]\n`);
    const { by } = await scan([], { policyFile: policy });
    assert.ok(by(join(t, 'keep.conf')));
    assert.equal(by(join(t, 'skip.swp')), undefined);
  });

  it('applies the rule options: depth, include, attribute groups, max hash size, file limit', async () => {
    const t = join(root, 'five');
    mkdirSync(join(t, 'a', 'b', 'c'), { recursive: true });
    writeFileSync(join(t, 'top.log'), 'x');
    writeFileSync(join(t, 'top.txt'), 'x');
    writeFileSync(join(t, 'a', 'mid.log'), 'x');
    writeFileSync(join(t, 'a', 'b', 'deep.log'), 'x');
    writeFileSync(join(t, 'a', 'b', 'c', 'deeper.log'), 'x');
    writeFileSync(join(t, 'big.log'), Buffer.alloc(2048, 1));
    const policy = join(root, 'five.yaml');
    const write = (extra: string, limits = '') =>
      writeFileSync(policy, `rules:\n  - name: logs\n    paths: [${t}]\n${extra}${limits ? `limits:\n${limits}` : ''}`);

    write('    depth: 2\n    include: ["**/*.log"]\n    max_hash_size: 1KiB\n');
    const first = await scan([], { policyFile: policy });
    const paths = first.states.map((s) => s.path.slice(t.length));
    // depth 2: the directory's own entries (level 1) and one level below (level 2).
    assert.deepEqual(paths.sort(), ['/a/mid.log', '/big.log', '/top.log'], 'depth 2 and *.log only');
    assert.equal(first.by(join(t, 'big.log'))?.sha256, null, 'over max_hash_size: stat only');
    assert.equal(first.by(join(t, 'top.log'))?.sha256, sha('x'));

    // Group L checks no content: a rewrite of the same size is not a change; a chmod is.
    const state = join(root, 'five-state');
    write('    attributes: L\n');
    await scan([], { policyFile: policy, stateDir: state });
    writeFileSync(join(t, 'top.txt'), 'y');
    const l1 = await scan([], { policyFile: policy, stateDir: state });
    assert.equal(l1.by(join(t, 'top.txt'))?.change, null);
    chmodSync(join(t, 'top.txt'), 0o600);
    const l2 = await scan([], { policyFile: policy, stateDir: state });
    assert.equal(l2.by(join(t, 'top.txt'))?.change, 'attributes');

    write('', '  max_files_per_rule: 3\n');
    const limited = await scan([], { policyFile: policy });
    assert.equal(limited.result.files, 3);
    assert.deepEqual(limited.result.limited, ['logs']);
  });

  it('checks extended attributes when the rule asks (xattrs), and only then', async () => {
    const t = join(root, 'xattrs');
    mkdirSync(t);
    writeFileSync(join(t, 'bin'), 'payload');
    const policy = join(root, 'xattrs.yaml');
    const state = join(root, 'xattrs-state');
    // Without ctime, which any attribute change moves: only the xattrs check can see it.
    const use = (attributes: string) => writeFileSync(policy, `rules:\n  - name: r\n    paths: [${t}]\n    attributes: ${attributes}\n`);
    use('R-ctime+xattrs');
    const a = await scan([], { policyFile: policy, stateDir: state });
    assert.equal(a.by(join(t, 'bin'))?.xattrsSha256, sha(''), 'no attributes yet: the digest of the empty list');
    setXattr(join(t, 'bin'), 'user.origin', 'vendor');
    const b = await scan([], { policyFile: policy, stateDir: state });
    assert.equal(b.by(join(t, 'bin'))?.change, 'attributes');
    assert.notEqual(b.by(join(t, 'bin'))?.xattrsSha256, sha(''));
    use('R-ctime');
    setXattr(join(t, 'bin'), 'user.origin', 'patched');
    const c = await scan([], { policyFile: policy, stateDir: state });
    assert.equal(c.by(join(t, 'bin'))?.change, null, 'not checked: not a change');
    assert.equal(c.by(join(t, 'bin'))?.xattrsSha256, null);
  });

  it('keeps hashing under the read-rate limit (a lower bound on time, never an upper one)', async () => {
    const t = join(root, 'six');
    mkdirSync(t);
    writeFileSync(join(t, 'f'), Buffer.alloc(3 << 20, 1));
    const policy = join(root, 'six.yaml');
    writeFileSync(policy, `rules:\n  - name: r\n    paths: [${t}]\nlimits:\n  io_mb_per_s: 2\n`);
    const t0 = process.hrtime.bigint();
    const { by } = await scan([], { policyFile: policy });
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    assert.equal(by(join(t, 'f'))?.sha256, sha(Buffer.alloc(3 << 20, 1)));
    // 3 MiB at 2 MB/s shared by two threads (one reads the file): at least 1.5 s.
    assert.ok(seconds >= 1.5, `took ${seconds.toFixed(2)} s`);
  });

  it('hashes with sha512 or blake2b512 when the rule asks, and switching algorithms is not a change', async () => {
    const t = join(root, 'seven');
    mkdirSync(t);
    writeFileSync(join(t, 'f'), 'payload');
    const policy = join(root, 'seven.yaml');
    const state = join(root, 'seven-state');
    const use = (hash: string) => writeFileSync(policy, `rules:\n  - name: r\n    paths: [${t}]\n    hash: ${hash}\n`);
    const digest = (alg: string) => createHash(alg).update('payload').digest('hex');
    use('sha512');
    const a = await scan([], { policyFile: policy, stateDir: state });
    assert.deepEqual(a.by(join(t, 'f'))?.digest, { algorithm: 'sha512', hex: digest('sha512') });
    assert.equal(a.by(join(t, 'f'))?.sha256, null);
    use('blake2b512');
    const b = await scan([], { policyFile: policy, stateDir: state });
    assert.equal(b.by(join(t, 'f'))?.change, null, 'a new algorithm is not a change');
    assert.deepEqual(b.by(join(t, 'f'))?.digest, { algorithm: 'blake2b512', hex: digest('blake2b512') }, 'the baseline moved to it');
    writeFileSync(join(t, 'f'), 'payloaX');
    const c = await scan([], { policyFile: policy, stateDir: state });
    assert.equal(c.by(join(t, 'f'))?.change, 'modified');
  });

  it('follows symlinks to directories only when asked, and never loops', async () => {
    const t = join(root, 'eight');
    const elsewhere = join(root, 'eight-elsewhere');
    mkdirSync(join(t, 'sub'), { recursive: true });
    mkdirSync(elsewhere);
    writeFileSync(join(elsewhere, 'target.conf'), 'tc');
    symlinkSync(elsewhere, join(t, 'conf'));
    symlinkSync('..', join(t, 'sub', 'up')); // a loop back to the top
    const policy = join(root, 'eight.yaml');
    writeFileSync(policy, `rules:\n  - name: r\n    paths: [${t}]\n`);
    const plain = await scan([], { policyFile: policy });
    assert.equal(plain.by(join(t, 'conf'))?.type, 'symlink');
    assert.equal(plain.by(join(t, 'conf', 'target.conf')), undefined, 'not followed by default');
    writeFileSync(policy, `rules:\n  - name: r\n    paths: [${t}]\n    follow_symlinks: true\n`);
    const followed = await scan([], { policyFile: policy });
    assert.equal(followed.by(join(t, 'conf'))?.type, 'symlink', 'the link itself is still recorded');
    assert.equal(followed.by(join(t, 'conf', 'target.conf'))?.sha256, sha('tc'));
    assert.equal(followed.by(join(t, 'sub', 'up'))?.type, 'symlink');
    assert.equal(followed.by(join(t, 'sub', 'up', 'sub')), undefined, 'the loop is cut');
  });

  // Needs the right to mount (root in a container that allows it): skipped where it is missing.
  const canMount = (() => {
    const probe = mkdtempSync(join(tmpdir(), 'vigil-mount-probe-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', 'none', probe], { stdio: 'ignore' });
      execFileSync('umount', [probe]);
      return true;
    } catch {
      return false;
    } finally {
      rmSync(probe, { recursive: true, force: true });
    }
  })();

  it('stays on one file system unless the rule says one_filesystem: false', { skip: !canMount && 'cannot mount here' }, async () => {
    const t = join(root, 'nine');
    mkdirSync(join(t, 'mnt'), { recursive: true });
    writeFileSync(join(t, 'here.conf'), 'h');
    execFileSync('mount', ['-t', 'tmpfs', 'none', join(t, 'mnt')]);
    try {
      writeFileSync(join(t, 'mnt', 'there.conf'), 'th');
      const policy = join(root, 'nine.yaml');
      writeFileSync(policy, `rules:\n  - name: r\n    paths: [${t}]\n`);
      const stay = await scan([], { policyFile: policy });
      assert.equal(stay.by(join(t, 'here.conf'))?.sha256, sha('h'));
      assert.equal(stay.by(join(t, 'mnt'))?.type, 'directory', 'the mount point itself is recorded');
      assert.equal(stay.by(join(t, 'mnt', 'there.conf')), undefined, 'not entered');
      writeFileSync(policy, `rules:\n  - name: r\n    paths: [${t}]\n    one_filesystem: false\n`);
      const cross = await scan([], { policyFile: policy });
      assert.equal(cross.by(join(t, 'mnt', 'there.conf'))?.sha256, sha('th'));
    } finally {
      execFileSync('umount', [join(t, 'mnt')]);
    }
  });
});
