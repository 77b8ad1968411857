import { X509Certificate } from 'node:crypto';
import { adminSpiffeId, agentSpiffeId, spkiFingerprint, type CertificateAuthority, type IssuedCertificate } from '../../pki/index.js';
import type { CertificateStore } from '../store/index.js';

export type OperatorRole = 'admin' | 'viewer';

/**
 * The one place a client certificate is issued, and every one is recorded (the certificates table
 * is the revocation list and the record of which key was certified for whom). Public keys come from
 * CSRs the caller has verified (pki verifyCsr).
 */
export interface Issuer {
  /** An agent's certificate: at enrolment (with its token) and on renewal (tokenId null). */
  issueAgent(r: { agentId: string; publicKeyPem: string; tokenId: string | null }): Promise<IssuedCertificate>;
  /** An operator's certificate (`vigilctl admins add`). */
  issueOperator(r: { name: string; publicKeyPem: string; role: OperatorRole }): Promise<IssuedCertificate & { spiffeId: string }>;
  /**
   * Records an operator certificate signed outside the controller (the first one, made by
   * `vigilctl init`), so that it can be revoked like any other; a second call changes nothing.
   */
  recordOperator(certPem: string): Promise<void>;
  /** The same issuer recording through another store, e.g. one bound to a transaction. */
  recordingIn(certificates: CertificateStore): Issuer;
}

export interface IssuerDeps {
  readonly ca: CertificateAuthority;
  readonly certificates: CertificateStore;
  readonly agentCertLifetimeMs: number;
  readonly operatorCertLifetimeMs: number;
}

export function createIssuer(deps: IssuerDeps): Issuer {
  const { ca, certificates } = deps;
  return {
    async issueAgent({ agentId, publicKeyPem, tokenId }) {
      const spiffeId = agentSpiffeId(ca.trustDomain, agentId);
      const issued = ca.issueClient({ publicKeyPem, spiffeId, lifetimeMs: deps.agentCertLifetimeMs });
      await certificates.record({
        serial: issued.serial,
        agentId,
        subject: spiffeId,
        keyFingerprint: spkiFingerprint(publicKeyPem),
        tokenId,
        notBefore: issued.notBefore,
        notAfter: issued.notAfter,
      });
      return issued;
    },
    async issueOperator({ name, publicKeyPem, role }) {
      const spiffeId = adminSpiffeId(ca.trustDomain, name);
      const issued = ca.issueClient({ publicKeyPem, spiffeId, lifetimeMs: deps.operatorCertLifetimeMs, role });
      await certificates.record({
        serial: issued.serial,
        agentId: null,
        subject: spiffeId,
        keyFingerprint: spkiFingerprint(publicKeyPem),
        tokenId: null,
        notBefore: issued.notBefore,
        notAfter: issued.notAfter,
        kind: 'operator',
        role,
      });
      return { ...issued, spiffeId };
    },
    async recordOperator(certPem) {
      const cert = new X509Certificate(certPem);
      await certificates.ensure({
        serial: cert.serialNumber.toLowerCase(),
        agentId: null,
        subject: (cert.subjectAltName ?? '').replace(/^URI:/, ''),
        keyFingerprint: spkiFingerprint(cert.publicKey),
        tokenId: null,
        notBefore: new Date(cert.validFrom),
        notAfter: new Date(cert.validTo),
        kind: 'operator',
        role: /(^|\n)OU=admin($|\n)/.test(cert.subject) ? 'admin' : 'viewer',
      });
    },
    recordingIn: (other) => createIssuer({ ...deps, certificates: other }),
  };
}
