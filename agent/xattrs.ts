/**
 * Extended attributes (every namespace: user, trusted, security — file capabilities and SELinux
 * labels live there), read with getfattr from the `attr` package: Node.js has no xattr API, and
 * the one prebuilt addon takes paths as UTF-8 strings, which cannot name every file. Paths go to
 * `xargs -0` on stdin as raw bytes; getfattr prints each file that has attributes as a block whose
 * name it escapes (\ooo octal, \\), values in hex. A symlink's own attributes are read (-h).
 *
 * The recorded value is a digest: SHA-256 over the attributes sorted by name, each as
 * name-length (u32 BE), name, value-length (u32 BE), value. A file without attributes gets the
 * digest of the empty list; null means "not read" (getfattr missing or failing on that path) and
 * never counts as a change.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';

const GETFATTR = ['getfattr', '--absolute-names', '--dump', '--match=-', '--encoding=hex', '--no-dereference', '--'];
const ENV = { ...process.env, LC_ALL: 'C' };

export type XattrList = [name: Buffer, value: Buffer][];

export function xattrsDigest(list: XattrList): Buffer {
  const h = createHash('sha256');
  const len = Buffer.alloc(4);
  for (const [name, value] of [...list].sort((a, b) => Buffer.compare(a[0], b[0]))) {
    len.writeUInt32BE(name.length);
    h.update(len).update(name);
    len.writeUInt32BE(value.length);
    h.update(len).update(value);
  }
  return h.digest();
}

/** Undoes getfattr's quoting: \ooo (octal byte) and \\; every other byte stands for itself. */
export function unquote(s: Buffer): Buffer {
  if (!s.includes(0x5c)) return s;
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c !== 0x5c) out.push(c);
    else if (s[i + 1] === 0x5c) {
      out.push(0x5c);
      i++;
    } else if (i + 3 < s.length && /^[0-7]{3}$/.test(s.toString('latin1', i + 1, i + 4))) {
      out.push(parseInt(s.toString('latin1', i + 1, i + 4), 8));
      i += 3;
    } else out.push(c);
  }
  return Buffer.from(out);
}

/** A value as --encoding=hex prints it: 0x…, or nothing / "" when empty. */
const value = (text: string) => (text.startsWith('0x') ? Buffer.from(text.slice(2), 'hex') : Buffer.alloc(0));

/** getfattr --dump output → attributes by path (the path's exact bytes, latin1 as map key). */
export function parseDump(out: Buffer): Map<string, XattrList> {
  const files = new Map<string, XattrList>();
  let current: XattrList | null = null;
  let start = 0;
  while (start < out.length) {
    let end = out.indexOf(0x0a, start);
    if (end < 0) end = out.length;
    const line = out.subarray(start, end);
    start = end + 1;
    if (line.length === 0) continue;
    if (line.subarray(0, 8).toString('latin1') === '# file: ') {
      current = [];
      files.set(unquote(line.subarray(8)).toString('latin1'), current);
      continue;
    }
    if (!current || line[0] === 0x23) continue;
    const eq = line.indexOf(0x3d);
    const name = unquote(eq < 0 ? line : line.subarray(0, eq));
    current.push([name, value(eq < 0 ? '' : line.subarray(eq + 1).toString('latin1'))]);
  }
  return files;
}

/** getfattr's "getfattr: PATH: message" lines → the paths that failed (latin1 keys). */
function failedPaths(err: Buffer): Set<string> {
  const failed = new Set<string>();
  for (const line of err.toString('latin1').split('\n')) {
    const m = /^getfattr: (.*): [^:]+$/.exec(line);
    if (m) failed.add(unquote(Buffer.from(m[1]!, 'latin1')).toString('latin1'));
  }
  return failed;
}

function digests(paths: readonly Buffer[], result: { stdout: Buffer; stderr: Buffer; status: number | null; error?: Error }): (Buffer | null)[] {
  // xargs or getfattr missing (127), not runnable (126), killed (null): nothing was read.
  if (result.error || result.status === null || result.status === 126 || result.status === 127) return paths.map(() => null);
  const dump = parseDump(result.stdout);
  const failed = failedPaths(result.stderr);
  return paths.map((p) => {
    const key = p.toString('latin1');
    if (failed.has(key)) return null;
    return xattrsDigest(dump.get(key) ?? []);
  });
}

const input = (paths: readonly Buffer[]) => Buffer.concat(paths.flatMap((p) => [p, Buffer.of(0)]));

/** Digest of each path's extended attributes (null: not read). Blocks: for worker threads. */
export function readXattrsSync(paths: readonly Buffer[]): (Buffer | null)[] {
  if (paths.length === 0) return [];
  const r = spawnSync('xargs', ['-0', '-r', ...GETFATTR], { input: input(paths), env: ENV, maxBuffer: 1 << 30 });
  return digests(paths, { stdout: r.stdout ?? Buffer.alloc(0), stderr: r.stderr ?? Buffer.alloc(0), status: r.status, ...(r.error ? { error: r.error } : {}) });
}

/** The same, without blocking the event loop (the real-time path). */
export function readXattrs(paths: readonly Buffer[]): Promise<(Buffer | null)[]> {
  if (paths.length === 0) return Promise.resolve([]);
  return new Promise((resolve) => {
    const child = spawn('xargs', ['-0', '-r', ...GETFATTR], { env: ENV, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let error: Error | undefined;
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => (error = e));
    child.stdin.on('error', () => {}); // a child that died early: reported by 'error' / 'close'
    child.on('close', (status) => resolve(digests(paths, { stdout: Buffer.concat(out), stderr: Buffer.concat(err), status, ...(error ? { error } : {}) })));
    child.stdin.end(input(paths));
  });
}

/** True when getfattr can be run (the `attr` package is installed). */
export function xattrToolAvailable(): boolean {
  return spawnSync('getfattr', ['--version'], { stdio: 'ignore' }).status === 0;
}
