import { agentRevokedError, ControllerError } from '../../errors.js';
import type { AgentRecord, AgentStore, CertificateStatus, CertificateStore, Clock } from '../../store/index.js';
import type { PeerIdentity } from '../peer-identity.js';

/**
 * The checks every agent stream passes before anything is read: the peer certificate is one this
 * controller issued to this very agent, neither it nor the agent is revoked. Run per stream, on
 * the certificate of this connection, so a resumed TLS session is judged like a new one.
 */
export async function authoriseAgentStream(
  peer: PeerIdentity,
  deps: { readonly agents: AgentStore; readonly certificates: CertificateStore; readonly clock: Clock },
): Promise<{ agent: AgentRecord; cert: CertificateStatus }> {
  const [agent, cert] = await Promise.all([deps.agents.get(peer.id), deps.certificates.find(peer.serial)]);
  if (!agent) throw new ControllerError('unauthenticated', 'this agent is not enrolled here');
  if (!cert || cert.agentId !== agent.id) throw new ControllerError('unauthenticated', 'this certificate was not issued to this agent by this controller');
  if (agent.revokedAt || cert.revokedAt) throw agentRevokedError(agent.id, agent.revokeReason);
  if (cert.notAfter.getTime() <= deps.clock().getTime()) throw certificateExpiredError();
  return { agent, cert };
}

/** The stream of an agent whose certificate expired (checked at open, and ended when it expires). */
export function certificateExpiredError(): ControllerError {
  return new ControllerError('unauthenticated', 'the agent certificate expired; enrol again');
}
