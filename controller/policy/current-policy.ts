import type { Policy } from '../../core/model.js';
import type { AlertRuleFor, PolicyStore } from '../store/index.js';
import { createRuleMatcher, policyForLabels } from '../../core/policy-match.js';

/** What applies to one agent: the rules its labels select, and which of them alert. */
export interface AgentPolicy {
  readonly policy: Policy;
  readonly alertRuleFor: AlertRuleFor;
}

/** The policy in force, cached with its compiled matchers per label set; refreshed on every apply. */
export interface CurrentPolicy {
  get(): Policy | null;
  /** The part for an agent with these labels; null when no policy was ever applied. */
  forLabels(labels: Readonly<Record<string, string>>): AgentPolicy | null;
  refresh(): Promise<Policy | null>;
  set(policy: Policy): void;
}

export async function loadCurrentPolicy(store: PolicyStore): Promise<CurrentPolicy> {
  let policy: Policy | null = null;
  let cache = new Map<string, AgentPolicy>();
  // Label sets that select the same rules share one AgentPolicy, so one Policy object per
  // (version, selection): its wire message is built once however many agents get it
  // (services/stream/down-message-pb.ts caches by that object).
  let bySelection = new Map<string, AgentPolicy>();
  // Versions only move forward: a slow refresh that read an older version must not win.
  const set = (p: Policy | null) => {
    if (!p || (policy && p.version <= policy.version)) return;
    policy = p;
    cache = new Map();
    bySelection = new Map();
  };
  set(await store.current());
  return {
    get: () => policy,
    forLabels(labels) {
      if (!policy) return null;
      const key = JSON.stringify(Object.entries(labels).sort());
      let entry = cache.get(key);
      if (!entry) {
        const own = policyForLabels(policy, labels);
        const selection = own.rules.map((r) => policy!.rules.indexOf(r)).join(',');
        entry = bySelection.get(selection);
        if (!entry) {
          const match = createRuleMatcher(own.rules);
          entry = {
            policy: own,
            alertRuleFor(path) {
              const rule = match(path);
              return rule?.alert ? rule.name : null;
            },
          };
          bySelection.set(selection, entry);
        }
        cache.set(key, entry);
      }
      return entry;
    },
    async refresh() {
      set(await store.current());
      return policy;
    },
    set,
  };
}
