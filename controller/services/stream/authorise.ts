import { agentRevokedError, ControllerError } from '../../errors.js';
import type { AgentRecord, AgentStore, CertificateStatus, Clock } from '../../store/index.js';
import type { PeerIdentity } from '../peer-identity.js';

/**
 * The checks every agent stream passes before anything is read: the peer certificate is one this
 * controller issued to this very agent, neither it nor the agent is revoked. Run per stream, on
 * the certificate of this connection, so a resumed TLS session is judged like a new one. One query.
 */
export async function authoriseAgentStream(
  peer: PeerIdentity,
  deps: { readonly agents: Pick<AgentStore, 'forStream'>; readonly clock: Clock },
): Promise<{ agent: AgentRecord; cert: CertificateStatus }> {
  const found = await deps.agents.forStream(peer.id, peer.serial);
  if (!found) throw new ControllerError('unauthenticated', 'this agent is not enrolled here');
  const { agent, cert } = found;
  if (!cert || cert.agentId !== agent.id) throw new ControllerError('unauthenticated', 'this certificate was not issued to this agent by this controller');
  if (agent.revokedAt || cert.revokedAt) throw agentRevokedError(agent.id, agent.revokeReason);
  if (cert.notAfter.getTime() <= deps.clock().getTime()) throw certificateExpiredError();
  return { agent, cert };
}

/** The stream of an agent whose certificate expired (checked at open, and ended when it expires). */
export function certificateExpiredError(): ControllerError {
  return new ControllerError('unauthenticated', 'the agent certificate expired; enrol again');
}
