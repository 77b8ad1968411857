import type { Interceptor } from '@connectrpc/connect';
import { ControllerError } from '../errors.js';
import type { OperatorStore } from '../store/index.js';
import { peerIdentityKey } from './peer-identity.js';

/**
 * Every admin RPC checks the revocation list for the operator identity of this very connection's
 * certificate (a resumed TLS session or a long-lived HTTP/2 connection gets no pass). Roles are
 * checked by each method (requireOperator).
 */
export function createOperatorRevocationInterceptor(operators: OperatorStore): Interceptor {
  return (next) => async (req) => {
    const id = req.contextValues.get(peerIdentityKey);
    if (id?.kind === 'admin' && (await operators.isRevoked(id.spiffeId))) {
      throw new ControllerError('permission_denied', `operator ${id.id} was revoked`);
    }
    return next(req);
  };
}
