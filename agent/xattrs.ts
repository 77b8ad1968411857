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
import { loadNativeAddon } from './native/addon.js';

import { encodeXattrs, type XattrList } from '../core/xattr-encoding.js';

export type { XattrList };

export function xattrsDigest(list: XattrList): Buffer {
  return createHash('sha256').update(encodeXattrs(list)).digest();
}

/** The attributes a named policy attribute stands for (AIDE's `acl` and `selinux`). */
export const NAMED_ATTRIBUTES = {
  acl: ['system.posix_acl_access', 'system.posix_acl_default'],
  selinux: ['security.selinux'],
} as const;

/** What a rule asks of a path's extended attributes, as bits: XATTRS_DIGEST, ACL_VALUES, SELINUX_VALUES. */
export const XATTRS_DIGEST = 1;
export const ACL_VALUES = 2;
export const SELINUX_VALUES = 4;

export function xattrWants(attributes: readonly string[]): number {
  return (attributes.includes('xattrs') ? XATTRS_DIGEST : 0) | (attributes.includes('acl') ? ACL_VALUES : 0) | (attributes.includes('selinux') ? SELINUX_VALUES : 0);
}

/**
 * One read of a path's attributes, for what `wants` asks: the digest of all of them, and the
 * encoded values of the named ones (FileState.attrValues). Null: not asked, or not read.
 */
export function readXattrParts(path: Buffer, wants: number): { xattrs: Buffer | null; attrValues: Buffer | null } {
  if (!wants) return { xattrs: null, attrValues: null };
  const list = readXattrList(path);
  if (!list) return { xattrs: null, attrValues: null };
  const names: string[] = [...(wants & ACL_VALUES ? NAMED_ATTRIBUTES.acl : []), ...(wants & SELINUX_VALUES ? NAMED_ATTRIBUTES.selinux : [])];
  return {
    xattrs: wants & XATTRS_DIGEST ? xattrsDigest(list) : null,
    attrValues: names.length ? encodeXattrs(list.filter(([n]) => names.includes(n.toString('latin1')))) : null,
  };
}

/** A path's attributes, or null when they could not be read (see above). */
export function readXattrList(path: Buffer): XattrList | null {
  const addon = loadNativeAddon();
  if (!addon) return null;
  const got = addon.readXattrs(path);
  return typeof got === 'number' ? null : got;
}
