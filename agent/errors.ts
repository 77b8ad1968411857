import { VigilError } from '../core/errors.js';

export type AgentErrorCode =
  | 'not_enrolled'
  | 'already_enrolled'
  | 'pin_mismatch'
  | 'enrol_refused'
  | 'controller_unreachable'
  | 'certificate_expired'
  | 'revoked'
  /** The controller refused a message of this agent as a whole (INVALID_ARGUMENT, RESOURCE_EXHAUSTED). */
  | 'message_refused'
  /** Any other failure of a call or stream: worth retrying. */
  | 'call_failed'
  | 'invalid_argument'
  /** The local store holds an entry the agent cannot read (agent/store/). */
  | 'store_corrupt';

export class AgentError extends VigilError<AgentErrorCode> {
  override readonly name = 'AgentError';
}
