import { lstatSync } from 'node:fs';
import type { PathRules } from '../../core/policy-match.js';
import { readMountPoints } from './mount-points.js';
import type { WalkOptions } from './walker.js';

/**
 * Where a scan's walk goes under a policy: the directories its rules cover, on the root's file
 * system unless a rule says otherwise (like find -xdev: a mount point is recorded, not entered;
 * only mount points can lead to another device, so only they are stat'ed, or every directory when
 * the mount list is unreadable), and into symlinked directories only for rules that follow them.
 */
export function walkScope(root: Buffer, rules: PathRules): WalkOptions {
  const rootDev = lstatSync(root, { throwIfNoEntry: false })?.dev;
  const mountPoints = readMountPoints();
  const follows = rules.rules.some((r) => r.followSymlinks);
  return {
    include: () => true,
    enter(p) {
      if (!rules.enter(p)) return false;
      if (mountPoints && !mountPoints.has(p.toString('latin1'))) return true;
      if (rules.match(p)?.rule.crossFileSystems) return true;
      return lstatSync(p, { throwIfNoEntry: false })?.dev === rootDev;
    },
    ...(follows ? { follow: (p: Buffer) => rules.match(p)?.rule.followSymlinks === true } : {}),
  };
}
