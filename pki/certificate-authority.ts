import { createHash, createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';
import { PkiError } from './errors.js';
import { readIssuerFields } from './issuer-fields.js';
import { generateKeyPair } from './keys.js';
import { spkiPin } from './pin.js';
import { createSigner } from './signer.js';
import { rsaSpkiOf, type RsaSpki } from './spki.js';

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
 * The subject key as forge takes it, and its subjectKeyIdentifier extension (RFC 5280 4.2.1.2
 * method 1: the SHA-1 of the RSAPublicKey, as forge computes it) made with node:crypto's SHA-1
 * rather than forge's JavaScript one. Read from the key's canonical SPKI (pki/spki.ts): forge
 * writes the same SubjectPublicKeyInfo back from the modulus and exponent.
 */
function subjectKey(publicKeyPem: string): { publicKey: forge.pki.rsa.PublicKey; subjectKeyIdentifier: object } {
  let spki: RsaSpki;
  try {
    spki = rsaSpkiOf(publicKeyPem);
  } catch (cause) {
    throw new PkiError('unsupported_key', 'certificates are issued for RSA public keys only', { cause });
  }
  const { BigInteger } = forge.jsbn;
  const publicKey = pki.setRsaPublicKey(new BigInteger(spki.modulus.toString('hex'), 16), new BigInteger(spki.exponent.toString('hex'), 16));
  const ski = createHash('sha1').update(spki.rsaPublicKey).digest('binary');
  return {
    publicKey,
    subjectKeyIdentifier: { name: 'subjectKeyIdentifier', value: forge.asn1.create(forge.asn1.Class.UNIVERSAL, forge.asn1.Type.OCTETSTRING, false, ski) },
  };
}

/** Creates a self-signed CA certificate and its key. */
export async function createCa(opts: CreateCaOptions): Promise<CaMaterial> {
  const keys = await generateKeyPair(3072);
  const now = opts.now ?? new Date();
  const cert = pki.createCertificate();
  const key = subjectKey(keys.publicKeyPem);
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
    publicKeyPem: string,
    notAfterMs: number,
    subject: forge.pki.CertificateField[],
    extensions: object[],
  ): IssuedCertificate {
    const cert = pki.createCertificate();
    const key = subjectKey(publicKeyPem);
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
      certPem: signer.certificate(cert),
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
      return sign(
        publicKeyPem,
        now().getTime() + validityDays * DAY_MS,
        [{ name: 'commonName', value: names[0] ?? 'vigil-controller' }],
        [
          { name: 'basicConstraints', cA: false, critical: true },
          { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
          { name: 'extKeyUsage', serverAuth: true },
          { name: 'subjectAltName', altNames },
        ],
      );
    },
    issueClient({ publicKeyPem, spiffeId, lifetimeMs, role }) {
      const subject: forge.pki.CertificateField[] = [{ name: 'organizationName', value: 'Vigil' }];
      if (role) subject.push({ name: 'organizationalUnitName', value: role });
      return sign(
        publicKeyPem,
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
