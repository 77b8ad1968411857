import picomatch from 'picomatch';
import { displayPath, type Policy, type PolicyRule } from './model.js';

/** True when path is root itself or below it. */
export function isUnder(path: string, root: string): boolean {
  const r = root.length > 1 && root.endsWith('/') ? root.slice(0, -1) : root;
  return path === r || path.startsWith(r === '/' ? '/' : `${r}/`);
}

/** Levels of path below root (0 for root itself). */
export function levelsBelow(path: string, root: string): number {
  const rest = path.slice(root === '/' ? 1 : root.replace(/\/$/, '').length + 1);
  return rest ? rest.split('/').length : 0;
}

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

export function createPathRules(rules: readonly PolicyRule[]): PathRules {
  const never = () => false;
  const compiled = rules.map((rule) => ({
    rule,
    excluded: rule.exclude.length ? picomatch([...rule.exclude], { dot: true }) : never,
    included: rule.include.length ? picomatch([...rule.include], { dot: true }) : () => true,
  }));
  const allPaths = rules.flatMap((r) => r.paths);
  // The first rule a path is under, within its depth and not excluded; recording also needs include.
  const within = (text: string, recording: boolean) => {
    for (const c of compiled) {
      const root = c.rule.paths.find((r) => isUnder(text, r));
      if (root === undefined || c.excluded(text) || (recording && !c.included(text))) continue;
      if (c.rule.maxDepth !== null && levelsBelow(text, root) > c.rule.maxDepth) continue;
      return { c, root };
    }
    return null;
  };
  return {
    rules,
    match(path) {
      const w = within(displayPath(path), true);
      return w ? { rule: w.c.rule, root: w.root } : null;
    },
    enter(dir) {
      const text = displayPath(dir);
      const w = within(text, false);
      if (w && (w.c.rule.maxDepth === null || levelsBelow(text, w.root) < w.c.rule.maxDepth)) return true;
      const prefix = text.endsWith('/') ? text : `${text}/`;
      return allPaths.some((rp) => rp.startsWith(prefix));
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
