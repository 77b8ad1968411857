import { createHash, X509Certificate } from 'node:crypto';
import forge from 'node-forge';
import { PkiError } from './errors.js';

const { asn1, pki } = forge;

/** What a certificate takes from the CA that issues it. */
export interface IssuerFields {
  /** The CA's subject, as forge attributes for the issued certificate's issuer. */
  readonly name: forge.pki.CertificateField[];
  /** The CA's key identifier (binary string) for the issued certificate's authorityKeyIdentifier. */
  readonly keyIdentifier: string;
}

const SUBJECT_KEY_IDENTIFIER = '2.5.29.14';

/** forge's DER reader with the option @types/node-forge leaves out: BIT STRINGs kept as bytes. */
const fromDer = asn1.fromDer as unknown as (bytes: string, options: { decodeBitStrings: boolean }) => forge.asn1.Asn1;
const forgeNames = pki as unknown as { RDNAttributesAsArray(name: forge.asn1.Asn1): forge.pki.CertificateField[] };

const children = (node: forge.asn1.Asn1 | undefined): forge.asn1.Asn1[] => (Array.isArray(node?.value) ? node.value : []);

/** The key identifier in a certificate's subjectKeyIdentifier extension, if it has one. */
function subjectKeyIdentifier(tbs: forge.asn1.Asn1[]): string | undefined {
  const explicit = tbs.find((e) => e.tagClass === asn1.Class.CONTEXT_SPECIFIC && e.type === 3);
  for (const extension of children(children(explicit)[0])) {
    const [id, ...rest] = children(extension);
    if (typeof id?.value !== 'string' || asn1.derToOid(id.value) !== SUBJECT_KEY_IDENTIFIER) continue;
    const octets = rest[rest.length - 1]?.value;
    if (typeof octets !== 'string') return undefined;
    const inner = fromDer(octets, { decodeBitStrings: false }).value;
    return typeof inner === 'string' ? inner : undefined;
  }
  return undefined;
}

/**
 * Reads the issuer name and key identifier from a CA certificate of any key type (forge's own
 * certificate reader takes RSA keys only). The key identifier is the CA's subjectKeyIdentifier, or
 * when it has none the SHA-1 of its subjectPublicKey (RFC 5280 4.2.1.2, method 1, as forge and
 * OpenSSL compute it).
 */
export function readIssuerFields(caCertPem: string): IssuerFields {
  let tbs: forge.asn1.Asn1[];
  try {
    const der = new X509Certificate(caCertPem).raw.toString('binary');
    tbs = children(children(fromDer(der, { decodeBitStrings: false }))[0]);
  } catch (cause) {
    throw new PkiError('invalid_pem', 'CA certificate is not a PEM X.509 certificate', { cause });
  }
  // TBSCertificate: [0] version (optional), serial, signature, issuer, validity, subject, subjectPublicKeyInfo, ...
  const at = tbs[0]?.tagClass === asn1.Class.CONTEXT_SPECIFIC ? 1 : 0;
  const subject = tbs[at + 4];
  const publicKeyBits = children(tbs[at + 5])[1]?.value;
  if (!subject || typeof publicKeyBits !== 'string') throw new PkiError('invalid_pem', 'CA certificate has no subject or public key');
  return {
    name: forgeNames.RDNAttributesAsArray(subject),
    // The BIT STRING's first byte counts its unused bits; the key is what follows.
    keyIdentifier: subjectKeyIdentifier(tbs) ?? createHash('sha1').update(Buffer.from(publicKeyBits.slice(1), 'binary')).digest('binary'),
  };
}
