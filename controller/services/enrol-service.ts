import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { parseToken, PkiError, verifyCsr, type CertificateAuthority } from '../../pki/index.js';
import { ControllerError } from '../errors.js';
import type { FailureLimiter } from '../enrol-rate-limit.js';
import type { Issuer } from '../identity/issuer.js';
import {
  createAgentStore,
  createCertificateStore,
  createTokenStore,
  type Clock,
  type ConsumeRefusal,
  type Sql,
} from '../store/index.js';

export interface EnrolDeps {
  readonly sql: Sql;
  /** For the CA certificate and trust domain an enrolled agent is given. */
  readonly ca: CertificateAuthority;
  readonly issuer: Issuer;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Where enrolled agents stream to (the mutual-TLS listener as agents reach it). */
  readonly connectAddress: () => string;
  /** Failed attempts per source address. */
  readonly failures: FailureLimiter;
}

const REFUSALS: Record<ConsumeRefusal, string> = {
  // Unknown id and wrong secret read the same, so the reply does not confirm that an id exists.
  unknown: 'token is not valid',
  bad_secret: 'token is not valid',
  expired: 'token has expired',
  revoked: 'token was revoked',
  used_up: 'token has no uses left',
};

/** What an enrolling agent sends (the Enroll RPC's request). */
export interface EnrolRequest {
  /** The `<id>.<secret>` token from the join string. */
  readonly token: string;
  /** PKCS#10 CSR, PEM; its subject is ignored. */
  readonly csrPem: string;
  readonly hostname: string;
}

/** What an enrolled agent is given (the Enroll RPC's response). */
export interface EnrolResult {
  readonly agentId: string;
  readonly certificatePem: string;
  readonly caPem: string;
  readonly trustDomain: string;
  readonly connectAddress: string;
}

/**
 * Enrolment (the contract's Enroll RPC, served by services/enrol-route.ts): token + CSR in, a
 * short-lived agent certificate out. Refusals are ControllerErrors and PkiErrors.
 */
export interface EnrolService {
  /** `remote`: the TCP peer address of the request's connection (the failure limit's key). */
  enrol(req: EnrolRequest, remote: string): Promise<EnrolResult>;
}

/** The enrol service. The CSR's subject is ignored. Logs as component `enroll`, after the RPC. */
export function createEnrolService(deps: EnrolDeps): EnrolService {
  const log = deps.logger.child({ component: 'enroll' });
  return {
    async enrol(req, remote) {
      // An address past its failure limit is refused, unless it holds a valid token: guesses stop
      // there, before the CSR is checked, while a host that shares the address (a NAT) and has
      // the right token still enrols (docs/security.md, "Enrolment rate limit").
      const wait = await deps.failures.blockedFor(remote);
      const limited = (): never => {
        log.warn({ remote, reason: 'rate_limited' }, 'enrolment refused');
        throw new ControllerError('resource_exhausted', `too many failed enrolment attempts from ${remote}; retry in ${Math.ceil(wait / 1000)} s`);
      };
      // Every refusal below counts against the source address and is logged without the secret.
      const refuse = async (reason: string, err: Error, tokenId?: string): Promise<never> => {
        // Recorded before the answer, so the next attempt on any replica counts it.
        await deps.failures.recordFailure(remote).catch((e: unknown) => log.error({ err: e, remote }, 'could not record a failed enrolment'));
        log.warn({ remote, tokenId, reason }, 'enrolment refused');
        throw err;
      };
      let token;
      try {
        token = parseToken(req.token);
      } catch (err) {
        if (wait > 0) return limited();
        return refuse('malformed_token', new ControllerError('unauthenticated', 'token is not valid', { cause: err }));
      }
      if (wait > 0 && !(await createTokenStore(deps.sql, deps.clock).matches(token))) return limited();
      let publicKeyPem: string;
      try {
        publicKeyPem = verifyCsr(req.csrPem);
      } catch (err) {
        return refuse(err instanceof PkiError ? err.code : 'csr', err as Error, token.id);
      }
      const hostname = req.hostname.slice(0, 255);
      const result = await deps.sql.transaction(async (tx) => {
        const consumed = await createTokenStore(tx, deps.clock).consume(token);
        if (!consumed.ok) return consumed;
        const agentId = randomUUID();
        await createAgentStore(tx, deps.clock).create({ id: agentId, hostname, tokenId: token.id, labels: consumed.token.labels });
        const issued = await deps.issuer.recordingIn(createCertificateStore(tx, deps.clock)).issueAgent({ agentId, publicKeyPem, tokenId: token.id });
        return { ok: true as const, agentId, issued };
      });
      if (!result.ok) return refuse(result.reason, new ControllerError('unauthenticated', REFUSALS[result.reason]), token.id);
      log.info({ remote, agentId: result.agentId, tokenId: token.id, hostname, serial: result.issued.serial }, 'agent enrolled');
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
