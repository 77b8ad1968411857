/**
 * Extended attributes (every namespace: user, trusted, security — file capabilities and SELinux
 * labels live there — and system, where POSIX ACLs live), read through the native addon
 * (llistxattr/lgetxattr, agent/native/xattr.c): no subprocess, no extra system package, and paths
 * as their exact bytes. A symlink's own attributes are read, never its target's.
 *
 * The recorded value is a digest: SHA-256 over the attributes sorted by name, each as
 * name-length (u32 BE), name, value-length (u32 BE), value. A file without attributes (or on a
 * file system without them) gets the digest of the empty list; null means "not read" (the addon
 * is not built, the path is gone or cannot be read) and never counts as a change.
 */
import { createHash } from 'node:crypto';
import { loadNativeAddon } from './scan/native.js';

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

/** A path's attributes, or null when they could not be read (see above). */
export function readXattrList(path: Buffer): XattrList | null {
  const addon = loadNativeAddon();
  if (!addon) return null;
  const got = addon.readXattrs(path);
  return typeof got === 'number' ? null : got;
}

/** Digest of each path's extended attributes (null: not read). A few system calls a path: for scan threads and real-time checks alike. */
export function readXattrsSync(paths: readonly Buffer[]): (Buffer | null)[] {
  return paths.map((p) => {
    const list = readXattrList(p);
    return list ? xattrsDigest(list) : null;
  });
}

/** The same, for callers that await (the real-time path). */
export function readXattrs(paths: readonly Buffer[]): Promise<(Buffer | null)[]> {
  return Promise.resolve(readXattrsSync(paths));
}
