import { readFile } from 'node:fs/promises';
import { createCertificateAuthority, readSecretFile, type CertificateAuthority } from '../pki/index.js';
import { ControllerError } from './errors.js';
import { vigilHome, type ControllerInfo, type VigilHome } from './home.js';
import { readCaKey } from './init.js';
import type { Clock } from './store/index.js';

/** What the controller reads from the home `vigilctl init` made, before anything listens. */
export interface ControllerHome {
  readonly paths: VigilHome;
  readonly info: ControllerInfo;
  readonly ca: CertificateAuthority;
  readonly caPem: string;
  readonly serverKeyPem: string;
  /** The server certificate followed by the CA. */
  readonly serverChainPem: string;
}

/** Reads controller.json, the CA (decrypting its key when needed) and the server's credential. */
export async function readControllerHome(dir: string, caPassphrase: string | undefined, clock: Clock): Promise<ControllerHome> {
  const paths = vigilHome(dir);
  let info: ControllerInfo;
  try {
    info = JSON.parse(await readFile(paths.controllerInfo, 'utf8')) as ControllerInfo;
  } catch (cause) {
    throw new ControllerError('failed_precondition', `no controller set-up in ${paths.dir}: run \`vigilctl init\` first`, { cause });
  }
  const caPem = await readFile(paths.caCert, 'utf8');
  const ca = createCertificateAuthority({ certPem: caPem, keyPem: await readCaKey(paths, caPassphrase) }, { trustDomain: info.trustDomain, now: clock });
  return { paths, info, ca, caPem, serverKeyPem: await readSecretFile(paths.serverKey), serverChainPem: await readFile(paths.serverCert, 'utf8') };
}
