import { VigilError } from '../core/errors.js';

/** What went wrong, as a code the RPC boundary maps to a gRPC status (see services/error-interceptor.ts). */
export type ControllerErrorCode =
  | 'unauthenticated'
  | 'permission_denied'
  | 'invalid_argument'
  | 'not_found'
  | 'failed_precondition'
  | 'resource_exhausted'
  | 'unavailable'
  | 'internal';

export class ControllerError extends VigilError<ControllerErrorCode> {
  override readonly name = 'ControllerError';
}

/**
 * What a revoked agent is told, wherever its stream or batch is refused (fleet/revocations.ts,
 * the stream's own checks): the reason when it is known, and the way back.
 */
export function agentRevokedError(agentId: string, reason?: string | null): ControllerError {
  return new ControllerError('permission_denied', `agent ${agentId} was revoked${reason ? `: ${reason}` : ''}; enrol it again`);
}
