import { createPrivateKey, createPublicKey, verify } from 'node:crypto';
import forge from 'node-forge';
import { PkiError } from './errors.js';

const { pki, asn1 } = forge;

/** A CSR larger than this is refused before it is parsed. */
export const MAX_CSR_PEM_BYTES = 16 * 1024;
export const MIN_RSA_BITS = 2048;
const SHA256_WITH_RSA = '1.2.840.113549.1.1.11';

/** Makes a PKCS#10 CSR for a key made with node:crypto. The subject is a hint only. */
export function createCsr(privateKeyPem: string, publicKeyPem: string, commonName: string): string {
  const csr = pki.createCertificationRequest();
  csr.publicKey = pki.publicKeyFromPem(createPublicKey(publicKeyPem).export({ type: 'spki', format: 'pem' }).toString());
  csr.setSubject([{ name: 'commonName', value: commonName }]);
  const pkcs1 = createPrivateKey(privateKeyPem).export({ type: 'pkcs1', format: 'pem' }).toString();
  csr.sign(pki.privateKeyFromPem(pkcs1), forge.md.sha256.create());
  return pki.certificationRequestToPem(csr);
}

/**
 * Checks a CSR before anything is signed: bounded size, well formed, RSA of at least 2048 bits,
 * signed with SHA-256 by the key it carries (verified by OpenSSL, not by forge).
 * Returns the public key (SPKI PEM); the CSR's subject and SANs are ignored by design.
 */
export function verifyCsr(csrPem: string): string {
  if (Buffer.byteLength(csrPem, 'utf8') > MAX_CSR_PEM_BYTES) {
    throw new PkiError('csr_too_large', `CSR is larger than ${MAX_CSR_PEM_BYTES} bytes`);
  }
  let csr: forge.pki.CertificateSigningRequest;
  try {
    csr = pki.certificationRequestFromPem(csrPem);
  } catch (cause) {
    throw new PkiError('csr_malformed', 'CSR is not a PEM PKCS#10 RSA request', { cause });
  }
  if (!csr.publicKey) throw new PkiError('csr_malformed', 'CSR has no public key');
  if (csr.signatureOid !== SHA256_WITH_RSA) {
    throw new PkiError('csr_bad_signature', 'CSR must be signed with sha256WithRSAEncryption');
  }
  let publicKeyPem: string;
  try {
    publicKeyPem = createPublicKey(pki.publicKeyToPem(csr.publicKey)).export({ type: 'spki', format: 'pem' }).toString();
  } catch (cause) {
    throw new PkiError('csr_malformed', 'CSR public key is not a valid RSA key', { cause });
  }
  const key = createPublicKey(publicKeyPem);
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (key.asymmetricKeyType !== 'rsa' || bits < MIN_RSA_BITS) {
    throw new PkiError('csr_weak_key', `CSR key must be RSA of at least ${MIN_RSA_BITS} bits (got ${bits})`);
  }
  // forge exports getCertificationRequestInfo but its typings omit it.
  const getInfo = (pki as unknown as { getCertificationRequestInfo(c: unknown): forge.asn1.Asn1 }).getCertificationRequestInfo;
  const infoDer = Buffer.from(asn1.toDer(getInfo(csr)).getBytes(), 'binary');
  const signature = Buffer.from(csr.signature as string, 'binary');
  if (!verify('sha256', infoDer, key, signature)) {
    throw new PkiError('csr_bad_signature', 'CSR signature does not verify with its own key');
  }
  return publicKeyPem;
}
