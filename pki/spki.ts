import { createPublicKey, type KeyObject } from 'node:crypto';
import { childrenOf, contentBytes, expectElement, pemToDer, TAG } from './der.js';

/** AlgorithmIdentifier { rsaEncryption, NULL }, as OpenSSL and node-forge write it for an RSA key. */
const RSA_ENCRYPTION = Buffer.from('300d06092a864886f70d0101010500', 'hex');

/** An RSA SubjectPublicKeyInfo in canonical DER, and the parts a certificate is built from. */
export interface RsaSpki {
  /** The SubjectPublicKeyInfo, DER, byte for byte what OpenSSL exports for this key. */
  readonly der: Buffer;
  /** The subjectPublicKey BIT STRING's content (the RSAPublicKey), what a key identifier hashes. */
  readonly rsaPublicKey: Buffer;
  /** Modulus and public exponent, big-endian, as their DER INTEGERs hold them. */
  readonly modulus: Buffer;
  readonly exponent: Buffer;
}

/** A DER INTEGER's content that is positive and minimally encoded. */
function positiveInteger(der: Buffer, at: number, limit: number): { bytes: Buffer; end: number } {
  const e = expectElement(der, at, TAG.INTEGER, limit);
  const bytes = contentBytes(der, e);
  if (bytes.length === 0 || bytes[0]! & 0x80) throw new Error('RSA integer is not positive');
  if (bytes[0] === 0 && (bytes.length === 1 || !(bytes[1]! & 0x80))) throw new Error('RSA integer is not minimally encoded');
  return { bytes, end: e.end };
}

/**
 * Reads `der` as an rsaEncryption SubjectPublicKeyInfo in canonical DER (definite minimal lengths,
 * NULL parameters, minimal positive integers, nothing after it); throws otherwise. Such bytes are
 * exactly what OpenSSL exports for the key, so hashes of them (fingerprints, key identifiers) agree
 * with OpenSSL's. It does not judge the key itself: OpenSSL does, where a key comes from outside.
 */
export function readRsaSpki(der: Buffer): RsaSpki {
  const outer = expectElement(der, 0, TAG.SEQUENCE);
  if (outer.end !== der.length) throw new Error('bytes after the SubjectPublicKeyInfo');
  const [algorithm, bits, ...rest] = childrenOf(der, outer);
  if (!algorithm || !bits || rest.length) throw new Error('not a SubjectPublicKeyInfo');
  if (!der.subarray(algorithm.at, algorithm.end).equals(RSA_ENCRYPTION)) throw new Error('not an rsaEncryption key');
  if (bits.tag !== TAG.BIT_STRING || der[bits.contentAt] !== 0) throw new Error('subjectPublicKey is not a whole-byte BIT STRING');
  const key = expectElement(der, bits.contentAt + 1, TAG.SEQUENCE, bits.end);
  if (key.end !== bits.end) throw new Error('bytes after the RSAPublicKey');
  const n = positiveInteger(der, key.contentAt, key.end);
  const e = positiveInteger(der, n.end, key.end);
  if (e.end !== key.end) throw new Error('bytes after the RSA exponent');
  return { der, rsaPublicKey: der.subarray(bits.contentAt + 1, bits.end), modulus: n.bytes, exponent: e.bytes };
}

/**
 * A public key's SubjectPublicKeyInfo, DER, as OpenSSL exports it, from PEM (any form node:crypto
 * reads) or a KeyObject. A canonical RSA SPKI PEM, which is what verifyCsr and generateKeyPair
 * return, is those bytes already and is read without OpenSSL (whose key decoder and encoder cost
 * about 0.25 ms a key); anything else goes through node:crypto.
 */
export function spkiDerOf(publicKey: string | KeyObject): Buffer {
  if (typeof publicKey === 'string') {
    try {
      return readRsaSpki(pemToDer(publicKey, ['PUBLIC KEY']).der).der;
    } catch {
      // Another form or key type: OpenSSL reads it and writes it out canonically.
    }
  }
  const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey;
  return key.export({ type: 'spki', format: 'der' });
}

/** The canonical SPKI of an RSA public key (PEM or KeyObject); throws for another key type. */
export const rsaSpkiOf = (publicKey: string | KeyObject): RsaSpki => readRsaSpki(spkiDerOf(publicKey));

/**
 * SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (65 bytes: 00, then the
 * uncompressed point) } up to the point: every P-256 SubjectPublicKeyInfo OpenSSL exports.
 */
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');
const P256_POINT_BYTES = 65;

/** A P-256 SubjectPublicKeyInfo in canonical DER (named curve, uncompressed point). */
export interface P256Spki {
  /** The SubjectPublicKeyInfo, DER, byte for byte what OpenSSL exports for this key. */
  readonly der: Buffer;
  /** The subjectPublicKey BIT STRING's content (the uncompressed point), what a key identifier hashes. */
  readonly point: Buffer;
}

/**
 * Reads `der` as a P-256 SubjectPublicKeyInfo as OpenSSL exports it (the curve named, the point
 * uncompressed); throws otherwise. Like readRsaSpki it does not judge the point: OpenSSL does.
 */
export function readP256Spki(der: Buffer): P256Spki {
  if (der.length !== P256_SPKI_PREFIX.length + P256_POINT_BYTES || !der.subarray(0, P256_SPKI_PREFIX.length).equals(P256_SPKI_PREFIX)) {
    throw new Error('not a P-256 SubjectPublicKeyInfo with a named curve');
  }
  const point = der.subarray(P256_SPKI_PREFIX.length);
  if (point[0] !== 0x04) throw new Error('the P-256 point is not uncompressed');
  return { der, point };
}
