import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { ServiceImpl } from '@connectrpc/connect';
import type { Logger } from 'pino';
import { adminSpiffeId, isValidName, verifyCsr, type CertificateAuthority } from '../../../pki/index.js';
import type { AdminService } from '../../../proto/gen/vigil/v1/admin_pb.js';
import { ControllerError } from '../../errors.js';
import type { Issuer } from '../../identity/issuer.js';
import type { AuditStore, CertificateStore, Clock } from '../../store/index.js';
import { requireOperator } from '../peer-identity.js';

export interface AdminsDeps {
  readonly logger: Logger;
  readonly clock: Clock;
  /** Its trust domain names operators; its certificate goes out with a new operator's. */
  readonly ca: CertificateAuthority;
  readonly issuer: Issuer;
  readonly certificates: CertificateStore;
  readonly audit: AuditStore;
}

const NAME_RULE = 'name: 1-128 characters of A-Z a-z 0-9 . _ -';

/** `vigilctl admins`: operator certificates issued, revoked and listed. */
export function adminMethods(deps: AdminsDeps): Pick<ServiceImpl<typeof AdminService>, 'addAdmin' | 'revokeAdmin' | 'listAdmins'> {
  const log = deps.logger.child({ component: 'admin' });
  return {
    async addAdmin(req, ctx) {
      const op = requireOperator(ctx, 'admin');
      if (!isValidName(req.name)) throw new ControllerError('invalid_argument', NAME_RULE);
      if (req.role !== 'admin' && req.role !== 'viewer') throw new ControllerError('invalid_argument', 'role: admin or viewer');
      const publicKeyPem = verifyCsr(req.csrPem);
      const issued = await deps.issuer.issueOperator({ name: req.name, publicKeyPem, role: req.role });
      await deps.audit.record({ actor: op.spiffeId, action: 'admins.add', target: issued.spiffeId, details: { role: req.role, serial: issued.serial } });
      log.info({ actor: op.spiffeId, operator: issued.spiffeId, role: req.role }, 'operator certificate issued');
      return { certificatePem: issued.certPem, caPem: deps.ca.certPem, spiffeId: issued.spiffeId };
    },

    async revokeAdmin(req, ctx) {
      const op = requireOperator(ctx, 'admin');
      if (!isValidName(req.name)) throw new ControllerError('invalid_argument', NAME_RULE);
      const spiffeId = adminSpiffeId(deps.ca.trustDomain, req.name);
      if (spiffeId === op.spiffeId) throw new ControllerError('failed_precondition', 'an operator cannot revoke itself');
      const reason = req.reason.slice(0, 500) || 'revoked by an operator';
      const revoked = await deps.certificates.revokeOperator(spiffeId);
      if (revoked === 0) throw new ControllerError('not_found', `no unrevoked certificate of operator ${req.name}`);
      await deps.audit.record({ actor: op.spiffeId, action: 'admins.revoke', target: spiffeId, details: { reason, certificates: revoked } });
      log.info({ actor: op.spiffeId, operator: spiffeId }, 'operator revoked');
      return {};
    },

    async listAdmins(_req, ctx) {
      requireOperator(ctx, 'viewer');
      const now = deps.clock().getTime();
      const certs = await deps.certificates.listOperators();
      return {
        admins: certs.map((c) => ({
          name: c.subject.slice(c.subject.lastIndexOf('/') + 1),
          spiffeId: c.subject,
          role: c.role ?? '',
          serial: c.serial,
          issuedAt: timestampFromDate(c.issuedAt),
          notAfter: timestampFromDate(c.notAfter),
          ...(c.revokedAt ? { revokedAt: timestampFromDate(c.revokedAt) } : {}),
          status: c.revokedAt ? 'revoked' : c.notAfter.getTime() <= now ? 'expired' : 'active',
        })),
      };
    },
  };
}
