import type { Revocations } from '../fleet/revocations.js';
import type { Issuer } from '../identity/issuer.js';
import type { ControllerMetrics } from './controller-metrics.js';

/** Counts renewals (an agent certificate issued without a token) through the one issuer. */
export function withRenewalMetrics(metrics: ControllerMetrics, issuer: Issuer): Issuer {
  return {
    async issueAgent(r) {
      const issued = await issuer.issueAgent(r);
      if (r.tokenId === null) metrics.renewal();
      return issued;
    },
    issueOperator: (r) => issuer.issueOperator(r),
    recordOperator: (pem) => issuer.recordOperator(pem),
    recordingIn: (certificates) => withRenewalMetrics(metrics, issuer.recordingIn(certificates)),
  };
}

/** Counts the revocations made through this replica. */
export function withRevocationMetrics(metrics: ControllerMetrics, revocations: Revocations): Revocations {
  return {
    ...revocations,
    async revoke(agentId, reason) {
      const r = await revocations.revoke(agentId, reason);
      metrics.revocation();
      return r;
    },
  };
}
