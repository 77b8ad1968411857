import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  createCa,
  createCertificateAuthority,
  createCsr,
  formatJoinString,
  generateKeyPair,
  generateToken,
  hashTokenSecret,
  parseJoinString,
  parseToken,
  PkiError,
  spkiPin,
  tokenSecretMatches,
  verifyCsr,
} from './index.js';

describe('certificate authority', async () => {
  const material = await createCa({ trustDomain: 'vigil.test' });
  const ca = createCertificateAuthority(material, { trustDomain: 'vigil.test' });

  it('issues an agent certificate with exactly one SPIFFE URI SAN, clientAuth, CA:false', async () => {
    const keys = await generateKeyPair();
    const issued = ca.issueClient({ publicKeyPem: keys.publicKeyPem, spiffeId: 'spiffe://vigil.test/agent/a1', lifetimeMs: 3600_000 });
    const cert = new X509Certificate(issued.certPem);
    assert.equal(cert.subjectAltName, 'URI:spiffe://vigil.test/agent/a1');
    assert.equal(cert.ca, false);
    assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.2']);
    assert.ok(cert.verify(new X509Certificate(material.certPem).publicKey), 'signed by the CA');
    assert.equal(cert.serialNumber.toLowerCase(), issued.serial.toUpperCase().toLowerCase());
  });

  it('issues distinct random serials', async () => {
    const keys = await generateKeyPair();
    const a = ca.issueClient({ publicKeyPem: keys.publicKeyPem, spiffeId: 'spiffe://vigil.test/agent/a', lifetimeMs: 1000 });
    const b = ca.issueClient({ publicKeyPem: keys.publicKeyPem, spiffeId: 'spiffe://vigil.test/agent/a', lifetimeMs: 1000 });
    assert.notEqual(a.serial, b.serial);
  });

  it('pins the CA public key, not the certificate', async () => {
    assert.match(ca.pin, /^sha256:[0-9a-f]{64}$/);
    const other = await createCa({ trustDomain: 'vigil.test' });
    assert.notEqual(spkiPin(other.certPem), ca.pin);
  });

  it('server certificates carry DNS and IP SANs', async () => {
    const keys = await generateKeyPair();
    const issued = ca.issueServer({ publicKeyPem: keys.publicKeyPem, names: ['localhost', '127.0.0.1'] });
    const cert = new X509Certificate(issued.certPem);
    assert.equal(cert.checkHost('localhost'), 'localhost');
    assert.equal(cert.checkIP('127.0.0.1'), '127.0.0.1');
  });
});

describe('CSR checks', () => {
  it('accepts a well-formed CSR and returns its key', async () => {
    const keys = await generateKeyPair();
    const pub = verifyCsr(createCsr(keys.privateKeyPem, keys.publicKeyPem, 'host'));
    assert.equal(pub.trim(), keys.publicKeyPem.trim());
  });

  it('refuses garbage, oversized, weak-key and wrongly signed CSRs with distinct codes', async () => {
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        assert.ok(e instanceof PkiError);
        return e.code;
      }
      assert.fail('expected an error');
    };
    assert.equal(code(() => verifyCsr('not a csr')), 'csr_malformed');
    assert.equal(code(() => verifyCsr('x'.repeat(100_000))), 'csr_too_large');
    const weak = await generateKeyPair(1024);
    assert.equal(code(() => verifyCsr(createCsr(weak.privateKeyPem, weak.publicKeyPem, 'h'))), 'csr_weak_key');
    // A CSR carrying key A but signed by key B.
    const a = await generateKeyPair();
    const b = await generateKeyPair();
    const forged = createCsr(b.privateKeyPem, a.publicKeyPem, 'h');
    assert.equal(code(() => verifyCsr(forged)), 'csr_bad_signature');
  });

  it('accepts CSRs made by the openssl CLI, with extensions (SANs, key usage) as `openssl req` adds them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-csr-'));
    try {
      const keys = await generateKeyPair();
      writeFileSync(join(dir, 'key.pem'), keys.privateKeyPem, { mode: 0o600 });
      const req = (...extra: string[]) =>
        execFileSync('openssl', ['req', '-new', '-sha256', '-key', join(dir, 'key.pem'), '-subj', '/CN=web-01/O=Example', ...extra], { encoding: 'utf8' });
      for (const csr of [req(), req('-addext', 'subjectAltName=DNS:web-01.example.org,IP:10.0.0.5', '-addext', 'keyUsage=digitalSignature', '-addext', 'extendedKeyUsage=clientAuth')]) {
        assert.equal(verifyCsr(csr).trim(), keys.publicKeyPem.trim());
      }
      // Tampering with the signed part (the subject) still fails.
      const withSan = req('-addext', 'subjectAltName=DNS:a.example');
      const der = Buffer.from(withSan.replace(/-----[^-]+-----|\s/g, ''), 'base64');
      const at = der.indexOf(Buffer.from('web-01'));
      der[at] = 0x57; // 'W'
      const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE REQUEST-----\n`;
      assert.throws(() => verifyCsr(tampered), (e: unknown) => e instanceof PkiError && e.code === 'csr_bad_signature');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('tokens and join strings', () => {
  it('round-trips a join string with several pins', () => {
    const token = generateToken();
    const pins = [`sha256:${'a'.repeat(64)}`, `sha256:${'b'.repeat(64)}`];
    const parsed = parseJoinString(formatJoinString({ address: '127.0.0.1:8444', token, pins }));
    assert.deepEqual(parsed, { address: '127.0.0.1:8444', token, pins });
  });

  it('refuses a join string without a pin', () => {
    const token = generateToken();
    assert.throws(
      () => parseJoinString(`vigil://h:1?token=${token.id}.${token.secret}`),
      (e: unknown) => e instanceof PkiError && e.code === 'invalid_join_string' && /pin/.test(e.message),
    );
  });

  it('never echoes a malformed token in its error', () => {
    const secretish = 'zzzzzzzzzz.short';
    assert.throws(() => parseToken(secretish), (e: unknown) => e instanceof PkiError && !e.message.includes('short'));
  });

  it('compares secrets against the stored hash', () => {
    const token = generateToken();
    const stored = hashTokenSecret(token.secret);
    assert.ok(tokenSecretMatches(token.secret, stored));
    assert.ok(!tokenSecretMatches(generateToken().secret, stored));
  });
});
