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
