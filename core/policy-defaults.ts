import type { Attribute, PolicyLimits, PolicyRule } from './model.js';

/** AIDE's group R: what a rule checks unless it says otherwise. */
export const GROUP_R: readonly Attribute[] = ['type', 'perm', 'inode', 'nlink', 'owner', 'group', 'size', 'mtime', 'ctime', 'hash'];

export const DEFAULT_LIMITS: PolicyLimits = { maxFilesPerRule: null, nice: 10, ioBytesPerSecond: null, queueBytes: null, maxWatches: null };

/** The agent's outgoing queue on disk at most, unless the policy says otherwise (limits.queue_size). */
export const DEFAULT_QUEUE_BYTES = 256 * 1024 * 1024;

/** A rule with every option at its default, for code that builds policies. */
export function defineRule(r: Pick<PolicyRule, 'name' | 'paths'> & Partial<PolicyRule>): PolicyRule {
  return {
    exclude: [],
    alert: false,
    selector: {},
    include: [],
    maxDepth: null,
    crossFileSystems: false,
    attributes: GROUP_R,
    maxHashBytes: null,
    recheckSeconds: 12 * 3600,
    rehashSeconds: 7 * 86400,
    hashAlgorithm: 'sha256',
    followSymlinks: false,
    ...r,
  };
}

