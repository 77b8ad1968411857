import type { ConnectRequest } from '../../../proto/gen/vigil/v1/agent_pb.js';
import type { PbDownMessage } from './down-message-pb.js';

/**
 * One agent stream as the Connect service sees it: decoded messages up, messages down, and a
 * signal for the stream going away. The transport (grpc/server-stream.ts through
 * agent-stream-route.ts) owns framing, encoding and HTTP/2; the service owns the protocol.
 */
export interface AgentWire {
  /** Messages up, in order; ends when the agent half-closes; throws when one cannot be read. */
  readonly requests: AsyncIterable<ConnectRequest>;
  /** Sends one message down (encoded by the transport; a shared message is encoded once). */
  send(msg: PbDownMessage): void;
  /** Aborted when the stream closes underneath (the agent reset it, the connection went). */
  readonly signal: AbortSignal;
}
