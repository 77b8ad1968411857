import { createHash, createPublicKey, randomUUID } from 'node:crypto';
import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
import type { Logger } from 'pino';
import { AgentService } from '../../proto/gen/vigil/v1/agent_pb.js';
import { agentSpiffeId, parseToken, PkiError, verifyCsr, type CertificateAuthority } from '../../pki/index.js';
import { ControllerError } from '../errors.js';
import {
  createAgentStore,
  createCertificateStore,
  createTokenStore,
  type Clock,
  type ConsumeRefusal,
  type Sql,
} from '../store/index.js';

export interface EnrollDeps {
  readonly sql: Sql;
  readonly ca: CertificateAuthority;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly agentCertLifetimeMs: number;
  /** Where enrolled agents stream to (the mutual-TLS listener as agents reach it). */
  readonly connectAddress: () => string;
}

const REFUSALS: Record<ConsumeRefusal, string> = {
  // Unknown id and wrong secret read the same, so the reply does not confirm that an id exists.
  unknown: 'token is not valid',
  bad_secret: 'token is not valid',
  expired: 'token has expired',
  revoked: 'token was revoked',
  used_up: 'token has no uses left',
};

function keyFingerprint(publicKeyPem: string): string {
  const der = createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' });
  return `sha256:${createHash('sha256').update(der).digest('hex')}`;
}

/** Enroll: token + CSR in, a short-lived agent certificate out. The CSR's subject is ignored. */
export function createEnrollService(deps: EnrollDeps): Pick<ServiceImpl<typeof AgentService>, 'enroll'> {
  const log = deps.logger.child({ component: 'enroll' });
  return {
    async enroll(req, ctx: HandlerContext) {
      const remote = ctx.requestHeader.get('x-forwarded-for') ?? '';
      let token;
      try {
        token = parseToken(req.token);
      } catch (err) {
        log.warn({ remote, reason: 'malformed_token' }, 'enrolment refused');
        throw new ControllerError('unauthenticated', 'token is not valid', { cause: err });
      }
      let publicKeyPem: string;
      try {
        publicKeyPem = verifyCsr(req.csrPem);
      } catch (err) {
        log.warn({ remote, tokenId: token.id, reason: err instanceof PkiError ? err.code : 'csr' }, 'enrolment refused');
        throw err;
      }
      const hostname = req.hostname.slice(0, 255);
      const result = await deps.sql.transaction(async (tx) => {
        const consumed = await createTokenStore(tx, deps.clock).consume(token);
        if (!consumed.ok) return consumed;
        const agentId = randomUUID();
        const spiffeId = agentSpiffeId(deps.ca.trustDomain, agentId);
        const issued = deps.ca.issueClient({ publicKeyPem, spiffeId, lifetimeMs: deps.agentCertLifetimeMs });
        await createAgentStore(tx, deps.clock).create({ id: agentId, hostname, tokenId: token.id, labels: consumed.token.labels });
        await createCertificateStore(tx, deps.clock).record({
          serial: issued.serial,
          agentId,
          subject: spiffeId,
          keyFingerprint: keyFingerprint(publicKeyPem),
          tokenId: token.id,
          notBefore: issued.notBefore,
          notAfter: issued.notAfter,
        });
        return { ok: true as const, agentId, issued };
      });
      if (!result.ok) {
        log.warn({ tokenId: token.id, reason: result.reason }, 'enrolment refused');
        throw new ControllerError('permission_denied', REFUSALS[result.reason]);
      }
      log.info({ agentId: result.agentId, tokenId: token.id, hostname, serial: result.issued.serial }, 'agent enrolled');
      return {
        agentId: result.agentId,
        certificatePem: result.issued.certPem,
        caPem: deps.ca.certPem,
        trustDomain: deps.ca.trustDomain,
        connectAddress: deps.connectAddress(),
      };
    },
  };
}
