import { verifyCsr, type IssuedCertificate } from '../../../pki/index.js';
import { ControllerError } from '../../errors.js';
import type { Issuer } from '../../identity/issuer.js';
import type { AgentStore, Clock } from '../../store/index.js';
import type { PeerIdentity } from '../peer-identity.js';
import { authoriseAgentStream } from './authorise.js';

/** A renewal before this share of the certificate's lifetime is refused (agents renew at 70-90 %). */
const EARLIEST_RENEWAL = 0.5;

export interface RenewalDeps {
  readonly agents: AgentStore;
  readonly issuer: Issuer;
  readonly clock: Clock;
}

/**
 * Certificate renewal over one live stream: once per stream, not before half the current
 * certificate's lifetime, and only while neither the agent nor the certificate is revoked.
 */
export function createStreamRenewal(peer: PeerIdentity, deps: RenewalDeps): (csrPem: string) => Promise<IssuedCertificate> {
  let renewed = false;
  return async (csrPem) => {
    // Re-read: a revocation may have landed since the stream opened.
    const { cert: current } = await authoriseAgentStream(peer, deps);
    if (renewed) throw new ControllerError('failed_precondition', 'one renewal per stream: reconnect with the new certificate');
    const life = current.notAfter.getTime() - current.notBefore.getTime();
    if (deps.clock().getTime() - current.notBefore.getTime() < life * EARLIEST_RENEWAL) {
      throw new ControllerError('failed_precondition', 'too early to renew this certificate');
    }
    renewed = true;
    const publicKeyPem = verifyCsr(csrPem);
    return deps.issuer.issueAgent({ agentId: peer.id, publicKeyPem, tokenId: null });
  };
}
