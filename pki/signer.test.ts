import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import forge from 'node-forge';
import { createCa, createCertificateAuthority, createCsr, generateKeyPair, generateP256KeyPair, PkiError, type CaMaterial, type IssuedCertificate } from './index.js';
import { createSigner } from './signer.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = new Date('2030-06-01T12:00:00.000Z');

const dir = mkdtempSync(join(tmpdir(), 'vigil-signer-'));
let files = 0;
/** Writes a PEM to a fresh file for the openssl CLI. */
const pemFile = (pem: string) => {
  const path = join(dir, `${files++}.pem`);
  writeFileSync(path, pem, { mode: 0o600 });
  return path;
};
const openssl = (...args: string[]) => execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const opensslText = (pem: string) => openssl('x509', '-noout', '-text', '-in', pemFile(pem));
/** `openssl verify -CAfile ca.pem cert.pem`, at `at` (default: the real time). */
const opensslVerifies = (caPem: string, pem: string, at?: Date) =>
  openssl('verify', ...(at ? ['-attime', String(at.getTime() / 1000)] : []), '-CAfile', pemFile(caPem), pemFile(pem)).trim().endsWith(': OK');

/** The value line under an extension's heading in `openssl x509 -text`, and whether it is critical. */
function extension(text: string, heading: string): { value: string; critical: boolean } | undefined {
  const m = new RegExp(`${heading}:( critical)?\\s*\\n\\s*(.+)`).exec(text);
  return m ? { value: m[2]!.trim(), critical: m[1] !== undefined } : undefined;
}
const line = (text: string, label: string) => new RegExp(`${label}\\s*:\\s*(.+)`).exec(text)?.[1]?.trim();

/** The same certificate fields signed by node-forge's own JavaScript RSA, as the CA did before. */
function forgeSigned(certPem: string, caKeyPem: string): string {
  const cert = forge.pki.certificateFromPem(certPem);
  const pkcs1 = createPrivateKey(caKeyPem).export({ type: 'pkcs1', format: 'pem' }).toString();
  cert.sign(forge.pki.privateKeyFromPem(pkcs1) as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}

/** Everything node:crypto reads from a certificate except its signature (and the fingerprints over it). */
function fieldsOf(pem: string) {
  const c = new X509Certificate(pem);
  return {
    subject: c.subject,
    issuer: c.issuer,
    subjectAltName: c.subjectAltName,
    extendedKeyUsage: c.keyUsage,
    ca: c.ca,
    validFrom: c.validFrom,
    validTo: c.validTo,
    serialNumber: c.serialNumber,
    publicKey: c.publicKey.export({ type: 'spki', format: 'pem' }),
    infoAccess: c.infoAccess,
  };
}

describe('certificates signed with node:crypto', async () => {
  after(() => rmSync(dir, { recursive: true, force: true }));
  const material = await createCa({ trustDomain: 'sign.test', now: NOW });
  const ca = createCertificateAuthority(material, { trustDomain: 'sign.test', now: () => NOW });
  const subjectKey = (await generateKeyPair()).publicKeyPem;

  const kinds: { kind: string; issue: () => IssuedCertificate; subject: string; san: string; keyUsage: string; extKeyUsage: string; sanCritical: boolean; lifetimeMs: number }[] = [
    {
      kind: 'agent (enrolment and renewal)',
      issue: () => ca.issueClient({ publicKeyPem: subjectKey, spiffeId: 'spiffe://sign.test/agent/a1', lifetimeMs: 24 * HOUR }),
      subject: 'O = Vigil',
      san: 'URI:spiffe://sign.test/agent/a1',
      keyUsage: 'Digital Signature, Key Encipherment',
      extKeyUsage: 'TLS Web Client Authentication',
      sanCritical: true,
      lifetimeMs: 24 * HOUR,
    },
    {
      kind: 'operator',
      issue: () => ca.issueClient({ publicKeyPem: subjectKey, spiffeId: 'spiffe://sign.test/admin/ops', lifetimeMs: 90 * DAY, role: 'admin' }),
      subject: 'O = Vigil, OU = admin',
      san: 'URI:spiffe://sign.test/admin/ops',
      keyUsage: 'Digital Signature, Key Encipherment',
      extKeyUsage: 'TLS Web Client Authentication',
      sanCritical: true,
      lifetimeMs: 90 * DAY,
    },
    {
      kind: 'server',
      issue: () => ca.issueServer({ publicKeyPem: subjectKey, names: ['controller.sign.test', '127.0.0.1'] }),
      subject: 'CN = controller.sign.test',
      san: 'DNS:controller.sign.test, IP Address:127.0.0.1',
      keyUsage: 'Digital Signature, Key Encipherment',
      extKeyUsage: 'TLS Web Server Authentication',
      sanCritical: false,
      lifetimeMs: 825 * DAY,
    },
  ];

  for (const k of kinds) {
    it(`${k.kind}: OpenSSL verifies the chain and reads the fields the CA always wrote`, () => {
      const issued = k.issue();
      assert.ok(opensslVerifies(material.certPem, issued.certPem, NOW), 'openssl verify -CAfile ca.pem');
      assert.ok(new X509Certificate(issued.certPem).verify(new X509Certificate(material.certPem).publicKey), 'X509Certificate.verify(CA key)');
      const text = opensslText(issued.certPem);
      assert.equal(line(text, 'Signature Algorithm'), 'sha256WithRSAEncryption');
      assert.equal(line(text, 'Subject'), k.subject);
      assert.equal(line(text, 'Issuer'), 'O = Vigil, CN = Vigil CA sign.test');
      assert.deepEqual(extension(text, 'X509v3 Subject Alternative Name'), { value: k.san, critical: k.sanCritical });
      assert.deepEqual(extension(text, 'X509v3 Basic Constraints'), { value: 'CA:FALSE', critical: true });
      assert.deepEqual(extension(text, 'X509v3 Key Usage'), { value: k.keyUsage, critical: true });
      assert.deepEqual(extension(text, 'X509v3 Extended Key Usage'), { value: k.extKeyUsage, critical: false });
      assert.equal(extension(text, 'X509v3 Authority Key Identifier')?.value, extension(opensslText(material.certPem), 'X509v3 Subject Key Identifier')?.value);
      assert.ok(extension(text, 'X509v3 Subject Key Identifier'));
      // The subject key and its identifier, as forge computed the identifier from the key itself.
      assert.equal(new X509Certificate(issued.certPem).publicKey.export({ type: 'spki', format: 'pem' }), subjectKey);
      assert.ok(forge.pki.certificateFromPem(issued.certPem).verifySubjectKeyIdentifier(), 'subjectKeyIdentifier = SHA-1 of the RSAPublicKey');
      // Serial: 16 random bytes, positive, as stored; validity: backdated 5 minutes from the CA's clock.
      assert.match(issued.serial, /^[4-7][0-9a-f]{31}$/);
      assert.equal(openssl('x509', '-noout', '-serial', '-in', pemFile(issued.certPem)).trim(), `serial=${issued.serial.toUpperCase()}`);
      assert.equal(issued.notBefore.getTime(), NOW.getTime() - 5 * 60_000);
      assert.equal(issued.notAfter.getTime(), NOW.getTime() + k.lifetimeMs);
      assert.equal(new Date(line(text, 'Not Before')!).getTime(), issued.notBefore.getTime());
      assert.equal(new Date(line(text, 'Not After ')!).getTime(), issued.notAfter.getTime());
    });

    it(`${k.kind}: the same certificate, byte for byte, as node-forge's own signing of the same fields`, () => {
      const issued = k.issue();
      const byForge = forgeSigned(issued.certPem, material.keyPem);
      assert.deepEqual(fieldsOf(issued.certPem), fieldsOf(byForge));
      // RSASSA-PKCS1-v1_5 is deterministic: same TBS bytes and key give the same signature.
      assert.equal(issued.certPem, byForge);
    });
  }

  it('the CA certificate itself: self-signed by node:crypto, as node-forge signed it, and OpenSSL accepts it as a root', () => {
    assert.ok(opensslVerifies(material.certPem, material.certPem, NOW));
    assert.equal(material.certPem, forgeSigned(material.certPem, material.keyPem));
    assert.ok(forge.pki.certificateFromPem(material.certPem).verifySubjectKeyIdentifier(), 'subjectKeyIdentifier = SHA-1 of the RSAPublicKey');
    const text = opensslText(material.certPem);
    assert.deepEqual(extension(text, 'X509v3 Basic Constraints'), { value: 'CA:TRUE', critical: true });
    assert.deepEqual(extension(text, 'X509v3 Key Usage'), { value: 'Digital Signature, Certificate Sign, CRL Sign', critical: true });
    assert.deepEqual(extension(text, 'X509v3 Subject Alternative Name'), { value: 'URI:spiffe://sign.test', critical: false });
    assert.equal(new X509Certificate(material.certPem).publicKey.asymmetricKeyDetails?.modulusLength, 3072);
  });

  describe('a CA with an EC key (made by the openssl CLI)', () => {
    /** An EC P-256 CA as `openssl req -x509` makes it, with or without a subjectKeyIdentifier. */
    function opensslEcCa(...extra: string[]): CaMaterial {
      const keyPath = join(dir, `ec-${files++}.key`);
      const certPath = join(dir, `ec-${files++}.pem`);
      openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyPath, '-out', certPath,
        '-subj', '/O=Vigil/CN=Vigil CA ec.test', '-days', '30', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', ...extra);
      return { certPem: readFileSync(certPath, 'utf8'), keyPem: readFileSync(keyPath, 'utf8') };
    }

    it('signs with ecdsa-with-SHA256 (DER signature, no algorithm parameters) and OpenSSL verifies the chain', () => {
      const ec = opensslEcCa();
      const ecCa = createCertificateAuthority(ec, { trustDomain: 'ec.test' });
      const issued = ecCa.issueClient({ publicKeyPem: subjectKey, spiffeId: 'spiffe://ec.test/agent/a1', lifetimeMs: HOUR });
      assert.ok(opensslVerifies(ec.certPem, issued.certPem));
      assert.ok(new X509Certificate(issued.certPem).verify(new X509Certificate(ec.certPem).publicKey));
      const text = opensslText(issued.certPem);
      assert.equal(line(text, 'Signature Algorithm'), 'ecdsa-with-SHA256');
      assert.equal(line(text, 'Issuer'), 'O = Vigil, CN = Vigil CA ec.test');
      assert.equal(extension(text, 'X509v3 Authority Key Identifier')?.value, extension(opensslText(ec.certPem), 'X509v3 Subject Key Identifier')?.value);
      assert.deepEqual(extension(text, 'X509v3 Subject Alternative Name'), { value: 'URI:spiffe://ec.test/agent/a1', critical: true });
      // Both AlgorithmIdentifiers (in the TBS and outside it) hold the OID alone, with no NULL parameters.
      const der = new X509Certificate(issued.certPem).raw;
      const ecdsaSha256 = Buffer.from('06082a8648ce3d040302', 'hex');
      const first = der.indexOf(ecdsaSha256);
      const second = der.indexOf(ecdsaSha256, first + 1);
      assert.ok(first > 0 && second > first);
      for (const at of [first, second]) {
        assert.equal(der[at - 2], 0x30, 'a SEQUENCE');
        assert.equal(der[at - 1], ecdsaSha256.length, 'holding the OID alone');
      }
    });

    it('without a subjectKeyIdentifier on the CA, the authority key id is the SHA-1 of its public key, as OpenSSL computes it', () => {
      const ec = opensslEcCa('-addext', 'subjectKeyIdentifier=none', '-addext', 'authorityKeyIdentifier=none');
      assert.equal(extension(opensslText(ec.certPem), 'X509v3 Subject Key Identifier'), undefined);
      const issued = createCertificateAuthority(ec, { trustDomain: 'ec.test' }).issueClient({ publicKeyPem: subjectKey, spiffeId: 'spiffe://ec.test/agent/a1', lifetimeMs: HOUR });
      assert.ok(opensslVerifies(ec.certPem, issued.certPem));
      // The same key in a certificate where OpenSSL writes the identifier itself (method 1, "hash").
      const keyPath = pemFile(ec.keyPem);
      const withSki = openssl('req', '-x509', '-key', keyPath, '-subj', '/CN=same key', '-days', '1', '-addext', 'subjectKeyIdentifier=hash');
      assert.equal(extension(opensslText(issued.certPem), 'X509v3 Authority Key Identifier')?.value, extension(opensslText(withSki), 'X509v3 Subject Key Identifier')?.value);
    });
  });

  describe('a server certificate for an ECDSA P-256 key (the listeners\' key of homes made since session 13)', async () => {
    const ecKey = await generateP256KeyPair();
    const issue = () => ca.issueServer({ publicKeyPem: ecKey.publicKeyPem, names: ['controller.sign.test', '127.0.0.1'] });

    it('OpenSSL verifies the chain and reads the server fields, the EC key in place, keyUsage digitalSignature alone', () => {
      const issued = issue();
      assert.ok(opensslVerifies(material.certPem, issued.certPem, NOW), 'openssl verify -CAfile ca.pem');
      const x509 = new X509Certificate(issued.certPem);
      assert.ok(x509.verify(new X509Certificate(material.certPem).publicKey), 'X509Certificate.verify(CA key)');
      assert.equal(x509.publicKey.export({ type: 'spki', format: 'pem' }), ecKey.publicKeyPem);
      assert.equal(x509.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
      assert.ok(x509.checkPrivateKey(createPrivateKey(ecKey.privateKeyPem)), 'the certificate holds the key pair\'s public half');
      const text = opensslText(issued.certPem);
      assert.equal(line(text, 'Signature Algorithm'), 'sha256WithRSAEncryption');
      assert.equal(line(text, 'Public Key Algorithm'), 'id-ecPublicKey');
      assert.equal(line(text, 'Subject'), 'CN = controller.sign.test');
      assert.equal(line(text, 'Issuer'), 'O = Vigil, CN = Vigil CA sign.test');
      assert.deepEqual(extension(text, 'X509v3 Subject Alternative Name'), { value: 'DNS:controller.sign.test, IP Address:127.0.0.1', critical: false });
      assert.deepEqual(extension(text, 'X509v3 Basic Constraints'), { value: 'CA:FALSE', critical: true });
      assert.deepEqual(extension(text, 'X509v3 Key Usage'), { value: 'Digital Signature', critical: true });
      assert.deepEqual(extension(text, 'X509v3 Extended Key Usage'), { value: 'TLS Web Server Authentication', critical: false });
      assert.equal(extension(text, 'X509v3 Authority Key Identifier')?.value, extension(opensslText(material.certPem), 'X509v3 Subject Key Identifier')?.value);
      assert.equal(issued.notAfter.getTime(), NOW.getTime() + 825 * DAY);
      assert.equal(openssl('x509', '-noout', '-serial', '-in', pemFile(issued.certPem)).trim(), `serial=${issued.serial.toUpperCase()}`);
    });

    it('its subjectKeyIdentifier is the SHA-1 of the EC point, as OpenSSL computes it for the same key', () => {
      const withSki = openssl('req', '-x509', '-key', pemFile(ecKey.privateKeyPem), '-subj', '/CN=same key', '-days', '1', '-addext', 'subjectKeyIdentifier=hash');
      assert.equal(extension(opensslText(issue().certPem), 'X509v3 Subject Key Identifier')?.value, extension(opensslText(withSki), 'X509v3 Subject Key Identifier')?.value);
    });

    it('agent and operator certificates stay RSA only', () => {
      assert.throws(() => ca.issueClient({ publicKeyPem: ecKey.publicKeyPem, spiffeId: 'spiffe://sign.test/agent/a1', lifetimeMs: HOUR }), (e: unknown) => e instanceof PkiError && e.code === 'unsupported_key');
    });

    it('refuses an EC key on another curve', () => {
      const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
      assert.throws(() => ca.issueServer({ publicKeyPem: p384, names: ['x'] }), (e: unknown) => e instanceof PkiError && e.code === 'unsupported_key');
    });
  });

  it('refuses to sign with a key that is neither RSA nor EC', () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    assert.throws(() => createSigner(privateKey), (e: unknown) => e instanceof PkiError && e.code === 'unsupported_key');
  });

  it('refuses a CA key that does not belong to the CA certificate', async () => {
    const other = await generateKeyPair();
    assert.throws(() => createCertificateAuthority({ certPem: material.certPem, keyPem: other.privateKeyPem }, { trustDomain: 'sign.test' }), (e: unknown) => e instanceof PkiError && e.code === 'ca_key_mismatch');
  });
});

describe('certification requests signed with node:crypto', () => {
  it('OpenSSL verifies a CSR from createCsr, and it is the CSR node-forge signed before, byte for byte', async () => {
    const keys = await generateKeyPair();
    const csrPem = createCsr(keys.privateKeyPem, keys.publicKeyPem, 'web-01');
    const out = execFileSync('openssl', ['req', '-verify', '-noout', '-subject'], { input: csrPem, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
    assert.match(out, /subject=CN = web-01/);
    const csr = forge.pki.certificationRequestFromPem(csrPem);
    const pkcs1 = createPrivateKey(keys.privateKeyPem).export({ type: 'pkcs1', format: 'pem' }).toString();
    csr.sign(forge.pki.privateKeyFromPem(pkcs1) as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
    assert.equal(csrPem, forge.pki.certificationRequestToPem(csr));
  });
});
