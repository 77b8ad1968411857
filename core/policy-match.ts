import picomatch from 'picomatch';
import { displayPath, type Policy, type PolicyRule } from './model.js';

export interface RuleMatch {
  readonly rule: PolicyRule;
  /** The rule path the match is under. */
  readonly root: string;
}

/** Where a path stands in a policy: which rule records it, and whether a walk goes into it. */
export interface PathRules {
  readonly rules: readonly PolicyRule[];
  /** The first rule that records this path: under one of its paths, within its depth, included, not excluded. */
  match(path: Buffer): RuleMatch | null;
  /** A walk enters this directory: a rule covers it and its depth allows going below, or it lies above a rule's path. */
  enter(dir: Buffer): boolean;
}

const SLASH = 0x2f;

/** Rule paths as bytes, without trailing slashes ('/' stays '/'). */
function rootBytes(root: string): Buffer {
  return Buffer.from(root.replace(/\/+$/, '') || '/');
}

/** True when path is root itself or below it (bytes: names need not be UTF-8). */
function isUnderBytes(path: Buffer, root: Buffer): boolean {
  if (root.length === 1 && root[0] === SLASH) return path[0] === SLASH;
  if (path.length < root.length || path.compare(root, 0, root.length, 0, root.length) !== 0) return false;
  return path.length === root.length || path[root.length] === SLASH;
}

/** Levels of path below root (0 for root itself); path must be under root. */
function levelsBelowBytes(path: Buffer, root: Buffer): number {
  const start = root.length === 1 && root[0] === SLASH ? 1 : root.length + 1;
  if (path.length <= start) return 0;
  let levels = 1;
  for (let i = start; i < path.length; i++) if (path[i] === SLASH) levels++;
  return levels;
}

/**
 * Called for every path a scan meets, so the paths and depths are checked on bytes; the path's
 * text (for the globs) is made only when a rule has globs.
 */
export function createPathRules(rules: readonly PolicyRule[]): PathRules {
  const compiled = rules.map((rule) => ({
    rule,
    roots: rule.paths.map(rootBytes),
    excluded: rule.exclude.length ? picomatch([...rule.exclude], { dot: true }) : null,
    included: rule.include.length ? picomatch([...rule.include], { dot: true }) : null,
  }));
  const allRoots = compiled.flatMap((c) => c.roots);
  // The first rule a path is under, within its depth and not excluded; recording also needs include.
  const within = (path: Buffer, recording: boolean) => {
    let text: string | undefined;
    for (const c of compiled) {
      const at = c.roots.findIndex((r) => isUnderBytes(path, r));
      if (at < 0) continue;
      if (c.excluded && c.excluded((text ??= displayPath(path)))) continue;
      if (recording && c.included && !c.included((text ??= displayPath(path)))) continue;
      if (c.rule.maxDepth !== null && levelsBelowBytes(path, c.roots[at]!) > c.rule.maxDepth) continue;
      return { c, at };
    }
    return null;
  };
  return {
    rules,
    match(path) {
      const w = within(path, true);
      return w ? { rule: w.c.rule, root: w.c.rule.paths[w.at]! } : null;
    },
    enter(dir) {
      const w = within(dir, false);
      if (w && (w.c.rule.maxDepth === null || levelsBelowBytes(dir, w.c.roots[w.at]!) < w.c.rule.maxDepth)) return true;
      // Above a rule's path: the walk goes through to reach it.
      const isRoot = dir.length === 1 && dir[0] === SLASH;
      return allRoots.some((r) => r.length > dir.length && r.compare(dir, 0, dir.length, 0, dir.length) === 0 && (isRoot || r[dir.length] === SLASH));
    },
  };
}

/** Finds the first rule that records a path (see createPathRules). */
export function createRuleMatcher(rules: readonly PolicyRule[]): (path: Buffer) => PolicyRule | null {
  const rulesFor = createPathRules(rules);
  return (path) => rulesFor.match(path)?.rule ?? null;
}

/** True when every selector pair is among the labels (an empty selector matches every agent). */
export function selectorMatches(selector: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** The part of a policy that applies to an agent with these labels. */
export function policyForLabels(policy: Policy, labels: Readonly<Record<string, string>>): Policy {
  return { version: policy.version, rules: policy.rules.filter((r) => selectorMatches(r.selector, labels)), limits: policy.limits };
}
