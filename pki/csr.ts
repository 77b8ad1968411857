import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { childrenOf, contentBytes, derToPem, elementBytes, expectElement, pemToDer, TAG } from './der.js';
import { PkiError } from './errors.js';
import { createSigner } from './signer.js';
import { readRsaSpki, type RsaSpki } from './spki.js';

const { pki } = forge;

/** A CSR larger than this is refused before it is parsed. */
export const MAX_CSR_PEM_BYTES = 16 * 1024;
export const MIN_RSA_BITS = 2048;
export const MAX_RSA_BITS = 8192;
const MAX_RSA_EXPONENT = 0xffff_ffffn;

/** Makes a PKCS#10 CSR for an RSA key made with node:crypto, signed by node:crypto. The subject is a hint only. */
export function createCsr(privateKeyPem: string, publicKeyPem: string, commonName: string): string {
  const csr = pki.createCertificationRequest();
  csr.publicKey = pki.publicKeyFromPem(createPublicKey(publicKeyPem).export({ type: 'spki', format: 'pem' }).toString());
  csr.setSubject([{ name: 'commonName', value: commonName }]);
  return createSigner(privateKeyPem).certificationRequest(csr);
}

const CSR_LABELS = ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST'];
/** sha256WithRSAEncryption's OID, DER (the only signature algorithm a CSR may use). */
const SHA256_WITH_RSA_OID = Buffer.from('06092a864886f70d01010b', 'hex');
const DER_NULL = Buffer.from('0500', 'hex');

/** What verifyCsr needs of a PKCS#10 request: the signed part as sent, the key it carries, the signature. */
interface CsrParts {
  /** certificationRequestInfo, its bytes exactly as sent: what the signature covers. */
  readonly info: Buffer;
  /** The request's SubjectPublicKeyInfo, DER. */
  readonly spki: Buffer;
  /** The signatureAlgorithm is sha256WithRSAEncryption (parameters NULL or absent). */
  readonly sha256WithRsa: boolean;
  readonly signature: Buffer;
}

/**
 * CertificationRequest ::= SEQUENCE { certificationRequestInfo, signatureAlgorithm, signature BIT STRING }
 * CertificationRequestInfo ::= SEQUENCE { version INTEGER (0), subject Name, subjectPKInfo, attributes [0] }
 * Read as DER, nothing after it; the subject and attributes are only stepped over (they are ignored).
 */
function csrParts(der: Buffer): CsrParts {
  const outer = expectElement(der, 0, TAG.SEQUENCE);
  if (outer.end !== der.length) throw new Error('bytes after the request');
  const [info, algorithm, signature, ...rest] = childrenOf(der, outer);
  if (!info || !algorithm || !signature || rest.length) throw new Error('a request has three parts');
  if (info.tag !== TAG.SEQUENCE || algorithm.tag !== TAG.SEQUENCE || signature.tag !== TAG.BIT_STRING) throw new Error('not a PKCS#10 request');
  const [version, subject, spki, attributes, ...more] = childrenOf(der, info);
  if (!version || !subject || !spki || more.length) throw new Error('not a PKCS#10 request info');
  if (version.tag !== TAG.INTEGER || !contentBytes(der, version).equals(Buffer.from([0]))) throw new Error('request version is not 1');
  if (subject.tag !== TAG.SEQUENCE || spki.tag !== TAG.SEQUENCE || (attributes && attributes.tag !== TAG.CONTEXT_0)) throw new Error('not a PKCS#10 request info');
  const [oid, parameters, ...extra] = childrenOf(der, algorithm);
  const sha256WithRsa = !!oid && elementBytes(der, oid).equals(SHA256_WITH_RSA_OID) && !extra.length && (!parameters || elementBytes(der, parameters).equals(DER_NULL));
  if (der[signature.contentAt] !== 0 || signature.end === signature.contentAt) throw new Error('signature is not a whole-byte BIT STRING');
  return { info: elementBytes(der, info), spki: elementBytes(der, spki), sha256WithRsa, signature: der.subarray(signature.contentAt + 1, signature.end) };
}

/**
 * The CSR's public key for OpenSSL, and its SPKI in canonical DER when it came so. A canonical RSA
 * SubjectPublicKeyInfo (what every encoder writes) is read here and handed over as its modulus and
 * exponent (JWK): OpenSSL's DER key decoder costs about 0.12 ms a call, the JWK import 0.005 ms,
 * and the key is the same. Anything else (another key type, a non-canonical encoding) goes to
 * OpenSSL's decoder as it is.
 */
function publicKeyOf(spki: Buffer): { key: KeyObject; canonicalSpki?: Buffer } {
  let rsa: RsaSpki;
  try {
    rsa = readRsaSpki(spki);
  } catch {
    return { key: createPublicKey({ key: spki, format: 'der', type: 'spki' }) };
  }
  // JWK integers are unsigned big-endian, without DER's leading zero byte.
  const unsigned = (b: Buffer) => (b[0] === 0 ? b.subarray(1) : b).toString('base64url');
  return { key: createPublicKey({ key: { kty: 'RSA', n: unsigned(rsa.modulus), e: unsigned(rsa.exponent) }, format: 'jwk' }), canonicalSpki: rsa.der };
}

/**
 * Checks a CSR before anything is signed: bounded size, well-formed DER PKCS#10, RSA of 2048 to
 * 8192 bits with an ordinary public exponent, signed with SHA-256 by the key it carries. OpenSSL (node:crypto) reads the key and
 * verifies the signature over the request info exactly as sent; the outline of the request is read
 * here with no ASN.1 library (node-forge's parser cost most of the check). Returns the public key
 * (SPKI PEM); the CSR's subject and attributes (SANs) are ignored by design.
 */
export function verifyCsr(csrPem: string): string {
  if (Buffer.byteLength(csrPem, 'utf8') > MAX_CSR_PEM_BYTES) {
    throw new PkiError('csr_too_large', `CSR is larger than ${MAX_CSR_PEM_BYTES} bytes`);
  }
  let csr: CsrParts;
  try {
    csr = csrParts(pemToDer(csrPem, CSR_LABELS).der);
  } catch (cause) {
    throw new PkiError('csr_malformed', 'CSR is not a PEM PKCS#10 request', { cause });
  }
  if (!csr.sha256WithRsa) {
    throw new PkiError('csr_bad_signature', 'CSR must be signed with sha256WithRSAEncryption');
  }
  let subject: ReturnType<typeof publicKeyOf>;
  try {
    subject = publicKeyOf(csr.spki);
  } catch (cause) {
    throw new PkiError('csr_malformed', 'CSR public key is not a valid public key', { cause });
  }
  const { key } = subject;
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (key.asymmetricKeyType !== 'rsa' || bits < MIN_RSA_BITS) {
    throw new PkiError('csr_weak_key', `CSR key must be RSA of at least ${MIN_RSA_BITS} bits (got ${key.asymmetricKeyType === 'rsa' ? bits : key.asymmetricKeyType})`);
  }
  // Bounds on what an unauthenticated caller can make the controller compute: a huge modulus or
  // exponent makes the signature check (and every later handshake with the certificate) cost as
  // much as a private-key operation, or more than OpenSSL takes at all (16,384 bits).
  const exponent = key.asymmetricKeyDetails?.publicExponent ?? 0n;
  if (bits > MAX_RSA_BITS || exponent < 3n || exponent > MAX_RSA_EXPONENT) {
    throw new PkiError('csr_unsupported_key', `CSR key must be RSA of at most ${MAX_RSA_BITS} bits with a public exponent from 3 to 2^32-1 (got ${bits} bits, exponent of ${exponent.toString(2).length} bits)`);
  }
  if (!verify('sha256', csr.info, key, csr.signature)) {
    throw new PkiError('csr_bad_signature', 'CSR signature does not verify with its own key');
  }
  // The key as OpenSSL writes it: the request's own bytes when they are canonical (as every
  // encoder writes them), else OpenSSL's re-encoding, so fingerprints and certificates agree.
  const spki = subject.canonicalSpki ?? key.export({ type: 'spki', format: 'der' });
  return derToPem(spki, 'PUBLIC KEY');
}
