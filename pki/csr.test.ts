import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { describe, it } from 'node:test';
import { derToPem, element, TAG } from './der.js';
import { createCsr, generateKeyPair, PkiError, spkiFingerprint, verifyCsr } from './index.js';

// PKCS#10 requests put together byte by byte, so that each part can be wrong on its own: the key,
// its encoding, the signature, the algorithm, the outline. verifyCsr reads them without node-forge
// (pki/csr.ts), so these are the cases its own reader has to refuse.

const OID = {
  rsaEncryption: Buffer.from('06092a864886f70d010101', 'hex'),
  sha256WithRsa: Buffer.from('06092a864886f70d01010b', 'hex'),
  sha384WithRsa: Buffer.from('06092a864886f70d01010c', 'hex'),
};
const NULL = Buffer.from('0500', 'hex');
const seq = (...parts: Buffer[]) => element(TAG.SEQUENCE, ...parts);

/** A DER INTEGER of an unsigned big-endian number (a zero byte first when the top bit is set). */
const integer = (unsigned: Buffer) => element(TAG.INTEGER, unsigned[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), unsigned]) : unsigned);

/** rsaEncryption SubjectPublicKeyInfo for any modulus and exponent (no check that they make a key). */
const rsaSpki = (n: Buffer, e: Buffer, parameters: Buffer[] = [NULL]) =>
  seq(seq(OID.rsaEncryption, ...parameters), element(TAG.BIT_STRING, Buffer.from([0]), seq(integer(n), integer(e))));

const spkiOf = (key: KeyObject) => key.export({ type: 'spki', format: 'der' });

interface Parts {
  spki: Buffer;
  /** Signs the request info; default: nothing (a signature of zeros). */
  signer?: KeyObject;
  algorithm?: Buffer;
  version?: number;
  /** Changes the info after it is signed. */
  tamper?: (info: Buffer) => Buffer;
  /** Changes the signature after it is made. */
  signature?: (sig: Buffer) => Buffer;
}

function csrDer({ spki, signer, algorithm = seq(OID.sha256WithRsa, NULL), version = 0, tamper = (b) => b, signature = (s) => s }: Parts): Buffer {
  const subject = seq(element(0x31, seq(Buffer.from('0603550403', 'hex'), element(0x0c, Buffer.from('web-01')))));
  const info = seq(element(TAG.INTEGER, Buffer.from([version])), subject, spki, element(TAG.CONTEXT_0));
  const sig = signer ? sign('sha256', info, signer) : Buffer.alloc(256);
  return seq(tamper(info), algorithm, element(TAG.BIT_STRING, Buffer.from([0]), signature(sig)));
}
const pem = (der: Buffer, label = 'CERTIFICATE REQUEST') => derToPem(der, label);

/** The code verifyCsr refuses with (fails when it accepts, or throws something other than PkiError). */
function refusal(csrPem: string): string {
  try {
    verifyCsr(csrPem);
  } catch (e) {
    assert.ok(e instanceof PkiError, `a PkiError, not ${String(e)}`);
    return e.code;
  }
  assert.fail('the CSR was accepted');
}

describe('CSR checks: hostile and unusual requests', () => {
  const a = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const b = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const aPem = a.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const good = (over: Partial<Parts> = {}) => csrDer({ spki: spkiOf(a.publicKey), signer: a.privateKey, ...over });

  it('accepts a request built here byte by byte, as from createCsr, and returns its key as node:crypto writes it', async () => {
    assert.equal(verifyCsr(pem(good())), aPem);
    assert.equal(verifyCsr(pem(good(), 'NEW CERTIFICATE REQUEST')), aPem, 'the label older tools write');
    assert.equal(verifyCsr(`some text before\n${pem(good())}and after\n`), aPem);
    const keys = await generateKeyPair();
    assert.equal(verifyCsr(createCsr(keys.privateKeyPem, keys.publicKeyPem, 'h')), keys.publicKeyPem);
  });

  it('refuses a request whose signature does not match its key', () => {
    // Key A in the request, signed by key B.
    assert.equal(refusal(pem(good({ signer: b.privateKey }))), 'csr_bad_signature');
    // Signed by A, then one bit of the signature flipped.
    assert.equal(refusal(pem(good({ signature: (s) => Buffer.concat([s.subarray(0, 100), Buffer.from([s[100]! ^ 1]), s.subarray(101)]) }))), 'csr_bad_signature');
    // Signed by A, then the signed part changed (the subject).
    assert.equal(refusal(pem(good({ tamper: (info) => Buffer.from(info.toString('binary').replace('web-01', 'web-02'), 'binary') }))), 'csr_bad_signature');
    // A signature of the wrong length, and none at all.
    assert.equal(refusal(pem(good({ signature: (s) => s.subarray(1) }))), 'csr_bad_signature');
    assert.equal(refusal(pem(good({ signature: () => Buffer.alloc(0) }))), 'csr_bad_signature');
  });

  it('refuses keys of the wrong size or kind before checking the signature', () => {
    for (const bits of [1024, 1536]) {
      const weak = generateKeyPairSync('rsa', { modulusLength: bits });
      assert.equal(refusal(pem(csrDer({ spki: spkiOf(weak.publicKey), signer: weak.privateKey }))), 'csr_weak_key', `${bits} bits`);
    }
    // Larger than any agent makes (9,000 bits; not a real key, and never signed: refused on size alone).
    const huge = randomBytes(1125);
    huge[0]! |= 0x80;
    huge[huge.length - 1]! |= 1;
    assert.equal(refusal(pem(csrDer({ spki: rsaSpki(huge, Buffer.from([1, 0, 1])) }))), 'csr_unsupported_key');
    // A real modulus with a public exponent of 2^40+1 (costly to verify), or of 1.
    const n = Buffer.from(a.publicKey.export({ format: 'jwk' }).n!, 'base64url');
    assert.equal(refusal(pem(csrDer({ spki: rsaSpki(n, Buffer.from('010000000001', 'hex')) }))), 'csr_unsupported_key');
    assert.equal(refusal(pem(csrDer({ spki: rsaSpki(n, Buffer.from([1])) }))), 'csr_unsupported_key');
    // Not RSA: an EC key, and RSA-PSS.
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    assert.equal(refusal(pem(csrDer({ spki: spkiOf(ec.publicKey), signer: ec.privateKey }))), 'csr_weak_key');
    const pss = generateKeyPairSync('rsa-pss', { modulusLength: 2048 });
    assert.equal(refusal(pem(csrDer({ spki: spkiOf(pss.publicKey), signer: pss.privateKey }))), 'csr_weak_key');
    // Something in the key's place that is no key at all.
    assert.equal(refusal(pem(csrDer({ spki: seq(seq(OID.rsaEncryption, NULL), element(TAG.BIT_STRING, Buffer.from([0, 1, 2, 3]))) }))), 'csr_malformed');
  });

  it('refuses a signature algorithm other than sha256WithRSAEncryption', () => {
    assert.equal(refusal(pem(good({ algorithm: seq(OID.sha384WithRsa, NULL) }))), 'csr_bad_signature');
    assert.equal(refusal(pem(good({ algorithm: seq(OID.sha256WithRsa, element(TAG.OCTET_STRING, Buffer.from([1]))) }))), 'csr_bad_signature');
    // Parameters absent (as ECDSA writes them) is the same algorithm.
    assert.equal(verifyCsr(pem(good({ algorithm: seq(OID.sha256WithRsa) }))), aPem);
  });

  it('refuses what is not a DER PKCS#10 request, as csr_malformed', () => {
    const der = good();
    const cases: Record<string, string> = {
      empty: '',
      'no PEM': der.toString('base64'),
      'another PEM label': pem(der, 'CERTIFICATE'),
      'no end line': pem(der).replace('-----END CERTIFICATE REQUEST-----', ''),
      'not base64': pem(der).replace(/^M/m, '*'),
      'encrypted PEM (headers)': pem(der).replace('-----\n', '-----\nProc-Type: 4,ENCRYPTED\n\n'),
      'bytes after the request': pem(Buffer.concat([der, Buffer.from([0])])),
      truncated: pem(der.subarray(0, der.length - 10)),
      'indefinite length (BER)': pem(Buffer.concat([Buffer.from([0x30, 0x80]), der.subarray(4), Buffer.from([0, 0])])),
      'version 2': pem(good({ version: 1 })),
      'a SEQUENCE of nothing': pem(seq()),
    };
    for (const [what, csr] of Object.entries(cases)) assert.equal(refusal(csr), 'csr_malformed', what);
    assert.equal(refusal('x'.repeat(100_000)), 'csr_too_large');
  });

  it('reads a key encoded other than canonically through OpenSSL, and returns it canonical', () => {
    // rsaEncryption without its NULL parameters: OpenSSL reads it; the key returned (and certified) is the canonical one.
    const jwk = a.publicKey.export({ format: 'jwk' });
    const spki = rsaSpki(Buffer.from(jwk.n!, 'base64url'), Buffer.from(jwk.e!, 'base64url'), []);
    assert.equal(verifyCsr(pem(good({ spki }))), aPem);
  });
});

describe('subject keys read without OpenSSL', () => {
  it('fingerprints a canonical SPKI PEM as OpenSSL does, and other forms through OpenSSL', () => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const viaOpenSsl = spkiFingerprint(publicKey);
    assert.equal(spkiFingerprint(publicKey.export({ type: 'spki', format: 'pem' }).toString()), viaOpenSsl);
    assert.equal(spkiFingerprint(publicKey.export({ type: 'pkcs1', format: 'pem' }).toString()), viaOpenSsl);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    assert.equal(spkiFingerprint(ec.export({ type: 'spki', format: 'pem' }).toString()), spkiFingerprint(createPublicKey(ec.export({ type: 'spki', format: 'pem' }))));
  });
});
