import type { Policy, PolicyLimits, PolicyRule } from '../../core/model.js';
import { DEFAULT_LIMITS } from '../../core/policy-schema.js';
import type { Clock } from './clock.js';
import { num, type Sql } from './sql.js';

/** Versioned policy documents: every apply stores a new version; the newest is current. */
export interface PolicyStore {
  current(): Promise<Policy | null>;
  apply(policy: { rules: readonly PolicyRule[]; limits: PolicyLimits }, actor: string): Promise<Policy>;
}

export function createPolicyStore(sql: Sql, clock: Clock): PolicyStore {
  return {
    async current() {
      const rows = await sql.query('select version, document from policies order by version desc limit 1');
      const row = rows[0];
      if (!row) return null;
      const doc = row.document as { rules: PolicyRule[]; limits?: PolicyLimits };
      return { version: num(row.version), rules: doc.rules, limits: doc.limits ?? DEFAULT_LIMITS };
    },
    async apply({ rules, limits }, actor) {
      return sql.transaction(async (tx) => {
        await tx.query('select pg_advisory_xact_lock(7419002)');
        const rows = await tx.query('select coalesce(max(version), 0) + 1 as v from policies');
        const version = num(rows[0]!.v);
        await tx.query('insert into policies (version, document, created_at, created_by) values ($1, $2, $3, $4)', [
          version,
          JSON.stringify({ rules, limits }),
          clock(),
          actor,
        ]);
        return { version, rules, limits };
      });
    },
  };
}
