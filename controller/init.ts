import { readFile, stat } from 'node:fs/promises';
import {
  decryptPrivateKey,
  encryptPrivateKey,
  adminSpiffeId,
  createCa,
  createCertificateAuthority,
  generateKeyPair,
  generateP256KeyPair,
  readSecretFile,
  writePublicFile,
  writeSecretFile,
} from '../pki/index.js';
import type { ControllerInfo, VigilHome } from './home.js';

export interface InitOptions {
  readonly serverNames: readonly string[];
  readonly trustDomain: string;
  readonly address: string;
  readonly enrolAddress: string;
  /** Name of the first operator (SPIFFE admin/<name>). */
  readonly operatorName: string;
  /** Lifetime of the first operator's certificate. */
  readonly operatorLifetimeMs: number;
  /** When set, the CA key is written encrypted (PKCS#8, AES-256-CBC) with this passphrase. */
  readonly caPassphrase?: string;
}

export interface InitResult {
  readonly createdCa: boolean;
  readonly pin: string;
}

const exists = (p: string) => stat(p).then(() => true, () => false);

/**
 * Creates, under VIGIL_HOME: the CA (kept if it exists), the controller's server certificate, the
 * first operator credential and controller.json. Idempotent for the CA: running it twice never
 * replaces a CA, so enrolled agents keep working.
 */
export async function initHome(home: VigilHome, opts: InitOptions): Promise<InitResult> {
  const createdCa = !(await exists(home.caCert));
  if (createdCa) {
    const ca = await createCa({ trustDomain: opts.trustDomain });
    await writeSecretFile(home.caKey, opts.caPassphrase ? encryptPrivateKey(ca.keyPem, opts.caPassphrase) : ca.keyPem);
    await writePublicFile(home.caCert, ca.certPem);
  }
  const caPem = await readFile(home.caCert, 'utf8');
  const info: ControllerInfo = createdCa
    ? { trustDomain: opts.trustDomain, address: opts.address, enrolAddress: opts.enrolAddress }
    : { ...(JSON.parse(await readFile(home.controllerInfo, 'utf8')) as ControllerInfo), address: opts.address, enrolAddress: opts.enrolAddress };
  const ca = createCertificateAuthority({ certPem: caPem, keyPem: await readCaKey(home, opts.caPassphrase) }, { trustDomain: info.trustDomain });

  // ECDSA P-256: the listeners' TLS handshakes sign with it (a tenth of RSA-2048's CPU). Homes made
  // before keep their RSA key until init runs again; agents check the server by the CA either way.
  const serverKeys = await generateP256KeyPair();
  const server = ca.issueServer({ publicKeyPem: serverKeys.publicKeyPem, names: opts.serverNames });
  await writeSecretFile(home.serverKey, serverKeys.privateKeyPem, { overwrite: true });
  // The chain carries the CA so that an enrolling agent can check its pin during first contact.
  await writePublicFile(home.serverCert, server.certPem + caPem);

  if (createdCa || !(await exists(home.operatorCert))) {
    const opKeys = await generateKeyPair();
    const op = ca.issueClient({
      publicKeyPem: opKeys.publicKeyPem,
      spiffeId: adminSpiffeId(info.trustDomain, opts.operatorName),
      lifetimeMs: opts.operatorLifetimeMs,
      role: 'admin',
    });
    await writeSecretFile(home.operatorKey, opKeys.privateKeyPem, { overwrite: true });
    await writePublicFile(home.operatorCert, op.certPem);
  }
  await writePublicFile(home.controllerInfo, `${JSON.stringify(info, null, 2)}\n`);
  return { createdCa, pin: ca.pin };
}

/** Reads the CA key (refusing a group- or world-readable file), decrypting it when encrypted. */
export async function readCaKey(home: VigilHome, passphrase: string | undefined): Promise<string> {
  return decryptPrivateKey(await readSecretFile(home.caKey), passphrase, home.caKey);
}
