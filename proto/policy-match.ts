import picomatch from 'picomatch';
import { displayPath, type Policy, type PolicyRule } from './model.js';

/** True when path is root itself or below it. */
export function isUnder(path: string, root: string): boolean {
  const r = root.length > 1 && root.endsWith('/') ? root.slice(0, -1) : root;
  return path === r || path.startsWith(r === '/' ? '/' : `${r}/`);
}

/** Finds the first rule that covers a path (under one of its paths, not excluded). */
export function createRuleMatcher(rules: readonly PolicyRule[]): (path: Buffer) => PolicyRule | null {
  const compiled = rules.map((rule) => ({ rule, excluded: picomatch(rule.exclude.length ? [...rule.exclude] : '\0never', { dot: true }) }));
  return (path) => {
    const text = displayPath(path);
    for (const { rule, excluded } of compiled) {
      if (rule.paths.some((root) => isUnder(text, root)) && !excluded(text)) return rule;
    }
    return null;
  };
}

/** True when every selector pair is among the labels (an empty selector matches every agent). */
export function selectorMatches(selector: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** The part of a policy that applies to an agent with these labels. */
export function policyForLabels(policy: Policy, labels: Readonly<Record<string, string>>): Policy {
  return { version: policy.version, rules: policy.rules.filter((r) => selectorMatches(r.selector, labels)), limits: policy.limits };
}
