import { createPublicKey, verify } from 'node:crypto';
import forge from 'node-forge';
import { PkiError } from './errors.js';
import { createSigner } from './signer.js';

const { pki } = forge;

/** A CSR larger than this is refused before it is parsed. */
export const MAX_CSR_PEM_BYTES = 16 * 1024;
export const MIN_RSA_BITS = 2048;
const SHA256_WITH_RSA = '1.2.840.113549.1.1.11';

/** Makes a PKCS#10 CSR for an RSA key made with node:crypto, signed by node:crypto. The subject is a hint only. */
export function createCsr(privateKeyPem: string, publicKeyPem: string, commonName: string): string {
  const csr = pki.createCertificationRequest();
  csr.publicKey = pki.publicKeyFromPem(createPublicKey(publicKeyPem).export({ type: 'spki', format: 'pem' }).toString());
  csr.setSubject([{ name: 'commonName', value: commonName }]);
  return createSigner(privateKeyPem).certificationRequest(csr);
}

/** One DER element at `at`: where its content starts and where it ends. */
function derElement(der: Buffer, at: number): { contentAt: number; end: number } {
  if (at + 2 > der.length) throw new Error('truncated DER');
  const first = der[at + 1]!;
  let length = first;
  let contentAt = at + 2;
  if (first & 0x80) {
    const n = first & 0x7f;
    if (n === 0 || n > 4 || contentAt + n > der.length) throw new Error('bad DER length');
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + der[contentAt + i]!;
    contentAt += n;
  }
  const end = contentAt + length;
  if (end > der.length) throw new Error('truncated DER');
  return { contentAt, end };
}

/** The certificationRequestInfo of a PKCS#10 request (the first element of its outer SEQUENCE), as sent. */
function requestInfoBytes(der: Buffer): Buffer {
  if (der[0] !== 0x30) throw new Error('not a SEQUENCE');
  const outer = derElement(der, 0);
  if (der[outer.contentAt] !== 0x30) throw new Error('no request info');
  const info = derElement(der, outer.contentAt);
  return der.subarray(outer.contentAt, info.end);
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
  // The signature covers the request info exactly as it was sent: its own bytes, not forge's
  // re-encoding of what it parsed (which differs for requests with extensions, as `openssl req`
  // makes them).
  let infoDer: Buffer;
  try {
    infoDer = requestInfoBytes(Buffer.from(pki.pemToDer(csrPem).getBytes(), 'binary'));
  } catch (cause) {
    throw new PkiError('csr_malformed', 'CSR is not well-formed DER', { cause });
  }
  const signature = Buffer.from(csr.signature as string, 'binary');
  if (!verify('sha256', infoDer, key, signature)) {
    throw new PkiError('csr_bad_signature', 'CSR signature does not verify with its own key');
  }
  return publicKeyPem;
}
