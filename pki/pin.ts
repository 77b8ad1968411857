import { createHash, X509Certificate, type KeyObject } from 'node:crypto';
import { PkiError } from './errors.js';
import { spkiDerOf } from './spki.js';

/** `sha256:<hex>` of a certificate's SubjectPublicKeyInfo, as kubeadm's discovery-token-ca-cert-hash. */
export function spkiPin(certPem: string | Buffer): string {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (cause) {
    throw new PkiError('invalid_pem', 'not a PEM or DER certificate', { cause });
  }
  return spkiFingerprint(cert.publicKey);
}

/** `sha256:<hex>` of a public key's SubjectPublicKeyInfo: CA pins and the key fingerprints recorded per certificate. */
export function spkiFingerprint(publicKey: KeyObject | string): string {
  return `sha256:${createHash('sha256').update(spkiDerOf(publicKey)).digest('hex')}`;
}

const PIN_RE = /^sha256:[0-9a-f]{64}$/;

export function isValidPin(pin: string): boolean {
  return PIN_RE.test(pin);
}
