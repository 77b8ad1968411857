import type { ServiceImpl } from '@connectrpc/connect';
import type { Logger } from 'pino';
import { policyToDocument, validatePolicy } from '../../../core/policy-schema.js';
import { policyFromPb, policyToPb } from '../../../proto/convert.js';
import type { AdminService } from '../../../proto/gen/vigil/v1/admin_pb.js';
import { ControllerError } from '../../errors.js';
import type { CurrentPolicy } from '../../policy/current-policy.js';
import type { PolicyDistribution } from '../../policy/distribution.js';
import type { AuditStore } from '../../store/index.js';
import { requireOperator } from '../peer-identity.js';

export interface PoliciesDeps {
  readonly logger: Logger;
  readonly policy: CurrentPolicy;
  readonly distribution: PolicyDistribution;
  readonly audit: AuditStore;
}

/** `vigilctl policies`: apply a new version (checked, then distributed) and read the current one. */
export function policyMethods(deps: PoliciesDeps): Pick<ServiceImpl<typeof AdminService>, 'applyPolicy' | 'getPolicy'> {
  const log = deps.logger.child({ component: 'admin' });
  return {
    async applyPolicy(req, ctx) {
      const op = requireOperator(ctx, 'admin');
      if (!req.policy) throw new ControllerError('invalid_argument', 'policy: missing');
      // The wire form is checked by the same schema as the YAML file (errors name its fields).
      const checked = validatePolicy(policyToDocument(policyFromPb(req.policy)));
      const { policy, pushedTo } = await deps.distribution.apply(checked, op.spiffeId);
      await deps.audit.record({ actor: op.spiffeId, action: 'policies.apply', target: `v${policy.version}`, details: { rules: checked.rules.length } });
      log.info({ actor: op.spiffeId, version: policy.version, pushedTo }, 'policy applied');
      return { version: BigInt(policy.version), pushedTo };
    },

    async getPolicy(_req, ctx) {
      requireOperator(ctx, 'viewer');
      const policy = deps.policy.get();
      return policy ? { policy: policyToPb(policy) } : {};
    },
  };
}
