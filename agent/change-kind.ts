/**
 * What a difference between two states of a path means under a rule: a change (classifyChange),
 * a refresh of the baseline the rule does not count as a change, or nothing (deltaKind: the one
 * decision scans and real-time checks record by).
 */
import type { Attribute, ChangeKind, FileState } from '../core/model.js';
import { GROUP_R } from '../core/policy-defaults.js';
import { digestAlgorithm } from './file-state.js';

/**
 * What kind of change takes `before` to `after`, judged on the rule's attributes (AIDE's way; the
 * default is group R); null when nothing the rule checks changed. Existence and the file type
 * always count. Content (hash, size, a symlink's target, becoming unreadable) is 'modified'; a
 * file checked with 'growing' may grow but not shrink. Permissions, owner, group, mtime, ctime,
 * inode, link count and extended attributes are 'attributes'. A directory's size, times and link
 * count change with its entries, which are reported themselves, so only its permissions and
 * owners count.
 */
export function classifyChange(before: FileState | null, after: FileState | null, attributes: readonly Attribute[] = GROUP_R): ChangeKind | null {
  if (!before && !after) return null;
  if (!before) return 'created';
  if (!after) return 'deleted';
  if (before.type !== after.type) return 'modified';
  const has = (a: Attribute) => attributes.includes(a);
  if (before.error !== after.error) return 'modified';
  const dir = before.type === 'directory';
  if (!dir) {
    if (!bufEq(before.symlinkTarget, after.symlinkTarget)) return 'modified';
    // Digests made with different algorithms (the rule changed) are not compared.
    if (has('hash') && digestAlgorithm(before) === digestAlgorithm(after)) {
      if (!bufEq(before.sha256, after.sha256) || !bufEq(before.digest?.value ?? null, after.digest?.value ?? null)) return 'modified';
    }
    if (has('size') && before.size !== after.size) return 'modified';
    if (has('growing') && after.size < before.size) return 'modified';
  }
  const attrs =
    (has('perm') && (before.mode & 0o7777) !== (after.mode & 0o7777)) ||
    (has('owner') && before.uid !== after.uid) ||
    (has('group') && before.gid !== after.gid) ||
    (!dir && has('mtime') && before.mtimeNs !== after.mtimeNs) ||
    (!dir && has('ctime') && before.ctimeNs !== after.ctimeNs) ||
    (!dir && has('inode') && before.inode !== after.inode) ||
    (!dir && has('nlink') && before.nlink !== after.nlink) ||
    // Not read on one side (the native addon missing, or the rule just started to ask): not a change.
    (has('xattrs') && !!before.xattrs && !!after.xattrs && !before.xattrs.equals(after.xattrs)) ||
    ((has('acl') || has('selinux')) && !!before.attrValues && !!after.attrValues && !before.attrValues.equals(after.attrValues));
  return attrs ? 'attributes' : null;
}

/**
 * The kind of delta to record when a path's state goes from `before` (the baseline; null: not in
 * it) to `after` (read now; null: gone): the change classifyChange finds; else 'refreshed' when the
 * state differs in a way the rule does not count (a log that grew under L+growing): the baseline
 * and the controller's current state follow the disk, without a history row or an alert
 * (docs/delivery.md); else null, nothing to record.
 */
export function deltaKind(before: FileState | null, after: FileState | null, attributes?: readonly Attribute[]): ChangeKind | null {
  const kind = classifyChange(before, after, attributes);
  if (kind) return kind;
  return before && after && !sameState(before, after) ? 'refreshed' : null;
}

function bufEq(a: Buffer | null, b: Buffer | null): boolean {
  if (a === null || b === null) return a === b;
  return a.equals(b);
}

/** True when the stat data a re-check compares is unchanged. */
export function sameStat(a: Pick<FileState, 'type' | 'size' | 'mode' | 'uid' | 'gid' | 'mtimeNs' | 'ctimeNs' | 'inode'>, b: FileState): boolean {
  return (
    a.type === b.type &&
    a.size === b.size &&
    a.mtimeNs === b.mtimeNs &&
    a.ctimeNs === b.ctimeNs &&
    a.inode === b.inode &&
    a.mode === b.mode &&
    a.uid === b.uid &&
    a.gid === b.gid
  );
}

/** Same stat data, link count and digest: nothing for the baseline to learn. */
export function sameState(a: FileState, b: FileState): boolean {
  return (
    sameStat(a, b) &&
    a.nlink === b.nlink &&
    digestAlgorithm(a) === digestAlgorithm(b) &&
    (a.sha256?.equals(b.sha256 ?? Buffer.alloc(0)) ?? b.sha256 === null) &&
    (a.digest?.value.equals(b.digest?.value ?? Buffer.alloc(0)) ?? !b.digest) &&
    (a.xattrs?.equals(b.xattrs ?? Buffer.alloc(0)) ?? !b.xattrs) &&
    (a.attrValues ? !!b.attrValues && a.attrValues.equals(b.attrValues) : !b.attrValues)
  );
}
