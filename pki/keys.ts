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

/** Makes a fresh RSA key pair with node:crypto (OpenSSL), off the event loop. */
export async function generateKeyPair(bits = DEFAULT_RSA_BITS): Promise<KeyPairPem> {
  const { privateKey, publicKey } = await generateKeyPairAsync('rsa', {
    modulusLength: bits,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey };
}
