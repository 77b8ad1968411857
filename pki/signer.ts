import { createPrivateKey, sign, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { childrenOf, derToPem, element, expectElement, TAG } from './der.js';
import { PkiError } from './errors.js';

const { asn1, pki } = forge;

/** The parts of node-forge's encoder that @types/node-forge does not declare. */
const forgeEncoding = pki as unknown as {
  getTBSCertificate(cert: forge.pki.Certificate): forge.asn1.Asn1;
  getCertificationRequestInfo(csr: forge.pki.CertificateSigningRequest): forge.asn1.Asn1;
};

/** node-forge's PEM line ending, kept so that certificates and CSRs stay byte for byte what they were. */
const FORGE_EOL = '\r\n';

/** Where the `signature` AlgorithmIdentifier stands in forge's TBSCertificate (version is always written). */
const TBS_SIGNATURE_INDEX = 2;
/** Where the subjectPublicKeyInfo stands in it. */
const TBS_SPKI_INDEX = 6;

const ALGORITHMS = {
  // RFC 4055: parameters NULL.
  rsa: { oid: '1.2.840.113549.1.1.11', name: 'sha256WithRSAEncryption', nullParameters: true, dsaEncoding: undefined },
  // RFC 5758: parameters absent; the signature is the DER ECDSA-Sig-Value.
  ec: { oid: '1.2.840.10045.4.3.2', name: 'ecdsa-with-SHA256', nullParameters: false, dsaEncoding: 'der' },
} as const;

/**
 * Signs what node-forge builds (X.509 certificates, PKCS#10 requests) with node:crypto, so the RSA
 * or ECDSA arithmetic runs in OpenSSL rather than in forge's JavaScript: forge encodes the
 * to-be-signed part, OpenSSL signs its DER, and the signed structure around it is put together
 * from bytes (pki/der.ts).
 */
export interface Signer {
  /** The signature algorithm: sha256WithRSAEncryption for an RSA key, ecdsa-with-SHA256 for an EC key. */
  readonly algorithm: { readonly oid: string; readonly name: string };
  /**
   * Signs a certificate whose fields forge holds; its issuer and extensions are as set. PEM.
   * `subjectPublicKeyInfo` (DER): the certificate's key in place of the one forge holds, for a key
   * forge cannot represent (EC); forge then holds a stand-in RSA key.
   */
  certificate(cert: forge.pki.Certificate, subjectPublicKeyInfo?: Buffer): string;
  /** Signs a certification request whose subject and public key forge holds. PEM. */
  certificationRequest(csr: forge.pki.CertificateSigningRequest): string;
}

/** A signer for a private key (PEM or KeyObject): RSA or EC. */
export function createSigner(privateKey: string | KeyObject): Signer {
  const key = typeof privateKey === 'string' ? createPrivateKey(privateKey) : privateKey;
  const type = key.asymmetricKeyType;
  if (type !== 'rsa' && type !== 'ec') {
    throw new PkiError('unsupported_key', `cannot sign with a ${type ?? 'unknown'} key (RSA or EC only)`);
  }
  const algorithm = ALGORITHMS[type];

  /** A fresh AlgorithmIdentifier each time: forge's ASN.1 objects are mutable and owned by their parent. */
  const algorithmIdentifier = (): forge.asn1.Asn1 =>
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(algorithm.oid).getBytes()),
      ...(algorithm.nullParameters ? [asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, '')] : []),
    ]);
  const algorithmIdentifierDer = Buffer.from(asn1.toDer(algorithmIdentifier()).getBytes(), 'binary');

  /**
   * SEQUENCE { toBeSigned, signatureAlgorithm, signature BIT STRING }: a Certificate and a
   * CertificationRequest alike. forge encodes the to-be-signed part once; the rest is put
   * together from bytes.
   */
  function signed(der: Buffer): Buffer {
    const signature = sign('sha256', der, algorithm.dsaEncoding ? { key, dsaEncoding: algorithm.dsaEncoding } : key);
    // No unused bits.
    return element(TAG.SEQUENCE, der, algorithmIdentifierDer, element(TAG.BIT_STRING, Buffer.from([0]), signature));
  }

  return {
    algorithm: { oid: algorithm.oid, name: algorithm.name },
    certificate(cert, subjectPublicKeyInfo) {
      // forge writes the algorithm OID it is given, always with NULL parameters; the TBS then gets
      // this signer's own identifier so that it matches the outer one byte for byte.
      cert.siginfo.algorithmOid = algorithm.oid;
      cert.signatureOid = algorithm.oid;
      const tbs = forgeEncoding.getTBSCertificate(cert);
      (tbs.value as forge.asn1.Asn1[])[TBS_SIGNATURE_INDEX] = algorithmIdentifier();
      const der = derOf(tbs);
      return derToPem(signed(subjectPublicKeyInfo ? withSubjectPublicKeyInfo(der, subjectPublicKeyInfo) : der), 'CERTIFICATE', FORGE_EOL);
    },
    certificationRequest(csr) {
      csr.signatureOid = algorithm.oid;
      return derToPem(signed(derOf(forgeEncoding.getCertificationRequestInfo(csr))), 'CERTIFICATE REQUEST', FORGE_EOL);
    },
  };
}

const derOf = (node: forge.asn1.Asn1): Buffer => Buffer.from(asn1.toDer(node).getBytes(), 'binary');

/** The TBSCertificate's DER with its subjectPublicKeyInfo replaced by `spki` (DER). */
function withSubjectPublicKeyInfo(tbs: Buffer, spki: Buffer): Buffer {
  const outer = expectElement(tbs, 0, TAG.SEQUENCE);
  const key = childrenOf(tbs, outer)[TBS_SPKI_INDEX];
  if (key?.tag !== TAG.SEQUENCE) throw new PkiError('unsupported_key', 'no subjectPublicKeyInfo where forge writes it');
  return element(TAG.SEQUENCE, tbs.subarray(outer.contentAt, key.at), spki, tbs.subarray(key.end, outer.end));
}
