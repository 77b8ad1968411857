import { VigilError } from '../core/errors.js';

export type AgentErrorCode =
  | 'not_enrolled'
  | 'already_enrolled'
  | 'pin_mismatch'
  | 'enrol_refused'
  | 'controller_unreachable'
  | 'certificate_expired'
  | 'revoked'
  | 'invalid_argument';

export class AgentError extends VigilError<AgentErrorCode> {
  override readonly name = 'AgentError';
}
