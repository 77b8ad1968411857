/**
 * Plain domain types mirroring the wire contract. Everything but the wire edges works on these.
 * They are mapped to and from generated messages only by the mappers in proto/ (convert.ts for
 * states, deltas and policies; sync-messages.ts for reconciliation; scan-summary.ts) and at the
 * edges that speak gRPC: the agent's agent/transport/, the controller's controller/services/ and
 * its listener wiring (controller/listeners.ts), and vigilctl (npm run lint keeps proto/gen out of
 * everything else).
 */

/**
 * `refreshed`: the baseline moved in a way the rule does not count as a change, or the path left
 * the baseline because the policy stopped covering it (state null). It updates the controller's
 * current state only: never a history row, never an alert.
 */
export const CHANGE_KINDS = ['created', 'modified', 'deleted', 'attributes', 'refreshed'] as const;
export type ChangeKind = (typeof CHANGE_KINDS)[number];

export const FILE_TYPES = ['regular', 'directory', 'symlink', 'fifo', 'socket', 'char_device', 'block_device', 'unknown'] as const;
export type FileType = (typeof FILE_TYPES)[number];

export const CHANGE_SOURCES = ['realtime', 'scan', 'rescan', 'baseline', 'reconcile'] as const;
export type ChangeSource = (typeof CHANGE_SOURCES)[number];

export const HASH_ALGORITHMS = ['sha256', 'sha512', 'blake2b512'] as const;
export type HashAlgorithm = (typeof HASH_ALGORITHMS)[number];

/** A content digest other than SHA-256 (which has its own field, sha256). */
export interface Digest {
  readonly algorithm: Exclude<HashAlgorithm, 'sha256'>;
  readonly value: Buffer;
}

export interface FileState {
  readonly type: FileType;
  readonly size: number;
  /** Full st_mode: type bits and permission bits. */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
  readonly inode: bigint;
  readonly nlink: number;
  /** SHA-256 of the content for regular files that were read; null otherwise. */
  readonly sha256: Buffer | null;
  readonly symlinkTarget: Buffer | null;
  /** Why the path could not be read, e.g. `EACCES`; null when it was read. */
  readonly error: string | null;
  /** Set instead of sha256 when the rule asks for sha512 or blake2b512. */
  readonly digest?: Digest | null;
  /**
   * SHA-256 over the extended attributes (agent/xattrs.ts), when the rule checks `xattrs`; the
   * digest of the empty list for a path without any; null or absent: not read.
   */
  readonly xattrs?: Buffer | null;
  /**
   * The values of the named attributes the rule checks (`acl`: system.posix_acl_access and
   * system.posix_acl_default; `selinux`: security.selinux), those the path has, encoded as
   * agent/xattrs.ts says (sorted by name; u32 length, name, u32 length, value), so that a change
   * can say which one changed. Empty: none of them set; null or absent: not read.
   */
  readonly attrValues?: Buffer | null;
}

export interface FileDelta {
  readonly seq: number;
  /** The path's exact bytes. */
  readonly path: Buffer;
  readonly kind: ChangeKind;
  /** Null when deleted. */
  readonly state: FileState | null;
  readonly detectedAt: Date;
  readonly source: ChangeSource;
}

/** What a rule checks, as AIDE does (see core/policy-schema.ts for the groups R, L, >, E). */
export const ATTRIBUTES = ['type', 'perm', 'inode', 'nlink', 'owner', 'group', 'size', 'growing', 'mtime', 'ctime', 'hash', 'xattrs', 'acl', 'selinux'] as const;
export type Attribute = (typeof ATTRIBUTES)[number];

export interface PolicyRule {
  readonly name: string;
  readonly paths: readonly string[];
  readonly exclude: readonly string[];
  readonly alert: boolean;
  /** Applies to agents whose labels include every pair; empty: every agent. */
  readonly selector: Readonly<Record<string, string>>;
  /** Globs a path must match to be recorded; empty: every path. */
  readonly include: readonly string[];
  /** Levels walked below each path; null: no limit. */
  readonly maxDepth: number | null;
  /** Walk into other file systems mounted below a path. */
  readonly crossFileSystems: boolean;
  readonly attributes: readonly Attribute[];
  /** Regular files larger than this are not hashed; null: no limit. */
  readonly maxHashBytes: number | null;
  readonly recheckSeconds: number;
  readonly rehashSeconds: number;
  readonly hashAlgorithm: HashAlgorithm;
  /** Walk into directories symlinks point to (loops are detected); symlinks are always recorded. */
  readonly followSymlinks: boolean;
}

export interface PolicyLimits {
  /** Paths recorded per rule at most; null: no limit. */
  readonly maxFilesPerRule: number | null;
  /** Niceness of the hashing threads, 0-19. */
  readonly nice: number;
  /** Bytes per second hashing reads at most, all threads together; null: no limit. */
  readonly ioBytesPerSecond: number | null;
  /**
   * Directories watched in real time at most; past it, scheduled scans only. null (or absent, in
   * a policy stored by an older agent): as many as the kernel allows.
   */
  readonly maxWatches?: number | null;
  /**
   * Bytes the agent's outgoing queue may hold on disk; null (or absent, in a policy stored by an
   * older agent): DEFAULT_QUEUE_BYTES.
   */
  readonly queueBytes?: number | null;
}

export interface Policy {
  /** 0 for a policy that has not been stored yet. */
  readonly version: number;
  readonly rules: readonly PolicyRule[];
  readonly limits: PolicyLimits;
}

/** Shows a path's bytes as text: valid UTF-8 as is, every other byte as \xNN, backslash as \\. */
export function displayPath(path: Buffer): string {
  const text = path.toString('utf8');
  if (!text.includes('\uFFFD') && !/[\\\x00-\x1f\x7f]/.test(text)) return text;
  let out = '';
  let i = 0;
  while (i < path.length) {
    const b = path[i]!;
    const len = b < 0x80 ? 1 : b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 0;
    const chunk = len > 0 ? path.subarray(i, i + len) : null;
    if (chunk && chunk.length === len && len > 1 && !chunk.toString('utf8').includes('\uFFFD')) {
      out += chunk.toString('utf8');
      i += len;
    } else if (b === 0x5c) {
      out += '\\\\';
      i += 1;
    } else if (b >= 0x20 && b < 0x7f) {
      out += String.fromCharCode(b);
      i += 1;
    } else {
      out += `\\x${b.toString(16).padStart(2, '0')}`;
      i += 1;
    }
  }
  return out;
}
