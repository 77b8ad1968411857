export type AgentErrorCode =
  | 'not_enrolled'
  | 'already_enrolled'
  | 'pin_mismatch'
  | 'enrol_refused'
  | 'controller_unreachable'
  | 'certificate_expired'
  | 'invalid_argument';

export class AgentError extends Error {
  override readonly name = 'AgentError';
  constructor(
    readonly code: AgentErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
