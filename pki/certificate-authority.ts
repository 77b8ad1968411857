import { createHash, createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';
import { PkiError } from './errors.js';
import { readIssuerFields } from './issuer-fields.js';
import { generateKeyPair } from './keys.js';
import { spkiPin } from './pin.js';
import { createSigner } from './signer.js';
import { readP256Spki, rsaSpkiOf, spkiDerOf, type RsaSpki } from './spki.js';

const { pki } = forge;

export interface CaMaterial {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface CreateCaOptions {
  readonly trustDomain: string;
  /** Default: 10 years. */
  readonly validityDays?: number;
  readonly now?: Date;
}

export interface IssueServerOptions {
  /** RSA, or ECDSA P-256 (what `vigil init` makes for the listeners). */
  readonly publicKeyPem: string;
  /** DNS names and IP addresses the server answers on. */
  readonly names: readonly string[];
  /** Default: 825 days. */
  readonly validityDays?: number;
}

export interface IssueClientOptions {
  readonly publicKeyPem: string;
  /** The single URI SAN, `spiffe://<trust-domain>/<kind>/<id>`. */
  readonly spiffeId: string;
  readonly lifetimeMs: number;
  /** Extra subject attribute for operators: their role (OU). */
  readonly role?: string;
}

export interface IssuedCertificate {
  readonly certPem: string;
  /** Hex, as stored in the certificates table. */
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** The internal CA: signs server, agent and operator certificates. */
export interface CertificateAuthority {
  readonly certPem: string;
  readonly trustDomain: string;
  /** `sha256:` pin of the CA's SubjectPublicKeyInfo. */
  readonly pin: string;
  issueServer(opts: IssueServerOptions): IssuedCertificate;
  issueClient(opts: IssueClientOptions): IssuedCertificate;
}

const DAY_MS = 86_400_000;
/**
 * Certificates start a little in the past so that small clock skew between hosts does not matter:
 * 5 minutes, or a tenth of the lifetime for very short-lived ones (so that renewal at 70-90 % of
 * the validity period still falls after issuance).
 */
const BACKDATE_MS = 5 * 60_000;
const backdate = (lifetimeMs: number) => Math.min(BACKDATE_MS, Math.floor(lifetimeMs / 10));

function randomSerial(): string {
  const bytes = randomBytes(16);
  // Positive, and no leading zero nibble, so the hex form is the same everywhere (forge, OpenSSL).
  bytes[0] = (bytes[0]! & 0x3f) | 0x40;
  return bytes.toString('hex');
}

/**
 * The subject key as the certificate is built from it: forge's key and the subjectKeyIdentifier
 * extension (RFC 5280 4.2.1.2 method 1: the SHA-1 of the subjectPublicKey BIT STRING's content,
 * as forge and OpenSSL compute it) made with node:crypto's SHA-1 rather than forge's JavaScript
 * one. An RSA key is read from its canonical SPKI (pki/spki.ts): forge writes the same
 * SubjectPublicKeyInfo back from the modulus and exponent. A P-256 key, which forge cannot hold,
 * comes with its SPKI, which the signer puts in place of a stand-in RSA key's (pki/signer.ts).
 */
interface SubjectKey {
  readonly type: 'rsa' | 'ec';
  readonly publicKey: forge.pki.rsa.PublicKey;
  readonly subjectKeyIdentifier: object;
  /** Set for a key forge cannot hold: the SubjectPublicKeyInfo the certificate carries instead. */
  readonly spki?: Buffer;
}

const keyIdentifierExtension = (keyBytes: Buffer): object => ({
  name: 'subjectKeyIdentifier',
  value: forge.asn1.create(forge.asn1.Class.UNIVERSAL, forge.asn1.Type.OCTETSTRING, false, createHash('sha1').update(keyBytes).digest('binary')),
});

/** forge's stand-in for a key it cannot hold; its SubjectPublicKeyInfo never reaches a certificate. */
let standIn: forge.pki.rsa.PublicKey | undefined;
const standInKey = () => (standIn ??= pki.setRsaPublicKey(new forge.jsbn.BigInteger('3'), new forge.jsbn.BigInteger('3')));

function subjectKey(publicKeyPem: string, types: readonly SubjectKey['type'][]): SubjectKey {
  let spki: RsaSpki;
  try {
    spki = rsaSpkiOf(publicKeyPem);
  } catch (cause) {
    if (types.includes('ec')) {
      try {
        const ec = readP256Spki(spkiDerOf(publicKeyPem));
        return { type: 'ec', publicKey: standInKey(), subjectKeyIdentifier: keyIdentifierExtension(ec.point), spki: ec.der };
      } catch {
        // Neither: refused below.
      }
    }
    throw new PkiError('unsupported_key', `certificates of this kind are issued for ${types.includes('ec') ? 'RSA or ECDSA P-256' : 'RSA'} public keys only`, { cause });
  }
  const { BigInteger } = forge.jsbn;
  const publicKey = pki.setRsaPublicKey(new BigInteger(spki.modulus.toString('hex'), 16), new BigInteger(spki.exponent.toString('hex'), 16));
  return { type: 'rsa', publicKey, subjectKeyIdentifier: keyIdentifierExtension(spki.rsaPublicKey) };
}

/** Creates a self-signed CA certificate and its key. */
export async function createCa(opts: CreateCaOptions): Promise<CaMaterial> {
  const keys = await generateKeyPair(3072);
  const now = opts.now ?? new Date();
  const cert = pki.createCertificate();
  const key = subjectKey(keys.publicKeyPem, ['rsa']);
  cert.publicKey = key.publicKey;
  cert.serialNumber = randomSerial();
  cert.validity.notBefore = new Date(now.getTime() - BACKDATE_MS);
  cert.validity.notAfter = new Date(now.getTime() + (opts.validityDays ?? 3650) * DAY_MS);
  const subject = [
    { name: 'organizationName', value: 'Vigil' },
    { name: 'commonName', value: `Vigil CA ${opts.trustDomain}` },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectAltName', altNames: [{ type: 6, value: `spiffe://${opts.trustDomain}` }] },
    key.subjectKeyIdentifier,
  ]);
  return { certPem: createSigner(keys.privateKeyPem).certificate(cert), keyPem: keys.privateKeyPem };
}

/**
 * Wraps CA material (an RSA or EC key) for signing: forge builds each certificate, node:crypto
 * signs it (pki/signer.ts). The clock is injected so tests can issue expired certificates.
 */
export function createCertificateAuthority(
  material: CaMaterial,
  opts: { trustDomain: string; now?: () => Date },
): CertificateAuthority {
  const now = opts.now ?? (() => new Date());
  const issuer = readIssuerFields(material.certPem);
  const caKey = createPrivateKey(material.keyPem);
  // Let OpenSSL confirm the key belongs to the certificate before we sign anything with it.
  const x509 = new X509Certificate(material.certPem);
  if (!x509.checkPrivateKey(caKey)) {
    throw new PkiError('ca_key_mismatch', 'CA key does not match CA certificate');
  }
  const signer = createSigner(caKey);

  function sign(
    key: SubjectKey,
    notAfterMs: number,
    subject: forge.pki.CertificateField[],
    extensions: object[],
  ): IssuedCertificate {
    const cert = pki.createCertificate();
    cert.publicKey = key.publicKey;
    cert.serialNumber = randomSerial();
    const start = now().getTime();
    cert.validity.notBefore = new Date(start - backdate(notAfterMs - start));
    cert.validity.notAfter = new Date(notAfterMs);
    cert.setSubject(subject);
    cert.setIssuer(issuer.name);
    cert.setExtensions([
      ...extensions,
      key.subjectKeyIdentifier,
      { name: 'authorityKeyIdentifier', keyIdentifier: issuer.keyIdentifier },
    ]);
    return {
      certPem: signer.certificate(cert, key.spki),
      serial: cert.serialNumber,
      notBefore: cert.validity.notBefore,
      notAfter: cert.validity.notAfter,
    };
  }

  return {
    certPem: material.certPem,
    trustDomain: opts.trustDomain,
    pin: spkiPin(material.certPem),
    issueServer({ publicKeyPem, names, validityDays = 825 }) {
      const altNames = names.map((n) => (isIP(n) ? { type: 7, ip: n } : { type: 2, value: n }));
      const key = subjectKey(publicKeyPem, ['rsa', 'ec']);
      return sign(
        key,
        now().getTime() + validityDays * DAY_MS,
        [{ name: 'commonName', value: names[0] ?? 'vigil-controller' }],
        [
          { name: 'basicConstraints', cA: false, critical: true },
          // An EC key signs only (RFC 5480 3: keyEncipherment is not for id-ecPublicKey keys).
          { name: 'keyUsage', digitalSignature: true, ...(key.type === 'rsa' ? { keyEncipherment: true } : {}), critical: true },
          { name: 'extKeyUsage', serverAuth: true },
          { name: 'subjectAltName', altNames },
        ],
      );
    },
    issueClient({ publicKeyPem, spiffeId, lifetimeMs, role }) {
      const subject: forge.pki.CertificateField[] = [{ name: 'organizationName', value: 'Vigil' }];
      if (role) subject.push({ name: 'organizationalUnitName', value: role });
      return sign(
        subjectKey(publicKeyPem, ['rsa']),
        now().getTime() + lifetimeMs,
        subject,
        [
          { name: 'basicConstraints', cA: false, critical: true },
          { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
          { name: 'extKeyUsage', clientAuth: true },
          { name: 'subjectAltName', critical: true, altNames: [{ type: 6, value: spiffeId }] },
        ],
      );
    },
  };
}
