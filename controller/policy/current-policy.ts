import type { Policy } from '../../proto/model.js';
import type { AlertRuleFor, PolicyStore } from '../store/index.js';
import { createRuleMatcher } from '../../proto/policy-match.js';

/** The policy in force, cached with its compiled matcher; refreshed on every apply. */
export interface CurrentPolicy {
  get(): Policy | null;
  alertRuleFor: AlertRuleFor;
  refresh(): Promise<Policy | null>;
  set(policy: Policy): void;
}

export async function loadCurrentPolicy(store: PolicyStore): Promise<CurrentPolicy> {
  let policy: Policy | null = null;
  let match = createRuleMatcher([]);
  const set = (p: Policy | null) => {
    policy = p;
    match = createRuleMatcher(p?.rules ?? []);
  };
  set(await store.current());
  return {
    get: () => policy,
    alertRuleFor(path) {
      const rule = match(path);
      return rule?.alert ? rule.name : null;
    },
    async refresh() {
      set(await store.current());
      return policy;
    },
    set,
  };
}
