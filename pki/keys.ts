import { generateKeyPair as generateKeyPairCb } from 'node:crypto';
import { promisify } from 'node:util';

const generateKeyPairAsync = promisify(generateKeyPairCb);

export interface KeyPairPem {
  /** PKCS#8 PEM. Never leaves the host that made it. */
  readonly privateKeyPem: string;
  /** SubjectPublicKeyInfo PEM. */
  readonly publicKeyPem: string;
}

/** Default RSA modulus; node-forge, which builds certificates and CSRs, reads RSA subject keys only. */
export const DEFAULT_RSA_BITS = 2048;

/**
 * Makes a fresh ECDSA P-256 key pair with node:crypto: the controller's TLS listeners' key (a
 * handshake's signature costs a tenth of RSA-2048's). Certificates are issued for it through the
 * SubjectPublicKeyInfo (pki/certificate-authority.ts), since node-forge reads RSA keys only.
 */
export async function generateP256KeyPair(): Promise<KeyPairPem> {
  const { privateKey, publicKey } = await generateKeyPairAsync('ec', {
    namedCurve: 'P-256',
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey };
}

/** Makes a fresh RSA key pair with node:crypto (OpenSSL), off the event loop. */
export async function generateKeyPair(bits = DEFAULT_RSA_BITS): Promise<KeyPairPem> {
  const { privateKey, publicKey } = await generateKeyPairAsync('rsa', {
    modulusLength: bits,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey };
}
