import type { Interceptor } from '@connectrpc/connect';
import { ControllerError } from '../errors.js';
import type { CertificateStore } from '../store/index.js';
import { peerIdentityKey } from './peer-identity.js';

/**
 * Every admin RPC checks the revocation list for the certificate of this very connection (a
 * resumed TLS session or a long-lived HTTP/2 connection gets no pass). Revocation is per
 * certificate, so an operator name can be issued again after its old credential was revoked.
 * Roles are checked by each method (requireOperator).
 */
export function createOperatorRevocationInterceptor(certificates: CertificateStore): Interceptor {
  return (next) => async (req) => {
    const id = req.contextValues.get(peerIdentityKey);
    if (id?.kind === 'admin' && (await certificates.find(id.serial))?.revokedAt) {
      throw new ControllerError('permission_denied', `this certificate of operator ${id.id} was revoked`);
    }
    return next(req);
  };
}
