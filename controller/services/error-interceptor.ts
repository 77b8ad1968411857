import { Code, ConnectError, type Interceptor } from '@connectrpc/connect';
import type { Logger } from 'pino';
import { ContractError } from '../../proto/convert.js';
import { PolicyError } from '../../core/policy-schema.js';
import { PkiError } from '../../pki/index.js';
import { ControllerError, type ControllerErrorCode } from '../errors.js';

const CODES: Record<ControllerErrorCode, Code> = {
  unauthenticated: Code.Unauthenticated,
  permission_denied: Code.PermissionDenied,
  invalid_argument: Code.InvalidArgument,
  not_found: Code.NotFound,
  failed_precondition: Code.FailedPrecondition,
  resource_exhausted: Code.ResourceExhausted,
  unavailable: Code.Unavailable,
  internal: Code.Internal,
};

/** The one place where Vigil's typed errors become gRPC statuses. Unknown errors are logged, not leaked. */
export function toConnectError(err: unknown, logger: Logger): ConnectError {
  if (err instanceof ConnectError) return err;
  if (err instanceof ControllerError) return new ConnectError(err.message, CODES[err.code], undefined, undefined, err);
  if (err instanceof PkiError || err instanceof ContractError || err instanceof PolicyError) return new ConnectError(err.message, Code.InvalidArgument, undefined, undefined, err);
  logger.error({ err }, 'internal error');
  return new ConnectError('internal error', Code.Internal, undefined, undefined, err);
}

async function* mapErrors<T>(it: AsyncIterable<T>, logger: Logger): AsyncIterable<T> {
  try {
    yield* it;
  } catch (err) {
    throw toConnectError(err, logger);
  }
}

export function createErrorInterceptor(logger: Logger): Interceptor {
  return (next) => async (req) => {
    try {
      const res = await next(req);
      return res.stream ? { ...res, message: mapErrors(res.message, logger) } : res;
    } catch (err) {
      throw toConnectError(err, logger);
    }
  };
}
