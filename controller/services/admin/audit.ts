import { timestampDate, timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { ServiceImpl } from '@connectrpc/connect';
import type { AdminService } from '../../../proto/gen/vigil/v1/admin_pb.js';
import type { AuditStore } from '../../store/index.js';
import { requireOperator } from '../peer-identity.js';

/** `vigilctl audit`: who changed what, newest page first. */
export function auditMethods(deps: { readonly audit: AuditStore }): Pick<ServiceImpl<typeof AdminService>, 'listAudit'> {
  return {
    async listAudit(req, ctx) {
      requireOperator(ctx, 'viewer');
      const res = await deps.audit.list({ limit: Math.min(req.limit || 1000, 100_000), ...(req.since ? { since: timestampDate(req.since) } : {}) });
      return {
        entries: res.entries.map((e) => ({ at: timestampFromDate(e.at), actor: e.actor, action: e.action, target: e.target, detailsJson: JSON.stringify(e.details) })),
        more: res.more,
      };
    },
  };
}
