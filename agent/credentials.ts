import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile, rename, rm, stat } from 'node:fs/promises';
import { readSecretFile, writePublicFile, writeSecretFile } from '../pki/index.js';
import { AgentError } from './errors.js';
import type { StateDir } from './state-dir.js';

/** The agent's TLS identity: its key (made here, never sent), its certificate and the pinned CA. */
export interface Credentials {
  readonly keyPem: string;
  readonly certPem: string;
  readonly caPem: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly serial: string;
}

const exists = (p: string) => stat(p).then(() => true, () => false);

function matches(certPem: string, keyPem: string): boolean {
  try {
    return new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

/**
 * Finishes a certificate swap that a crash interrupted. The swap writes key.pem.next and
 * cert.pem.next, then renames the key, then the certificate; whatever point it stopped at, the
 * pair left in place afterwards belongs together.
 */
async function completeSwap(dir: StateDir): Promise<void> {
  const nextCert = `${dir.cert}.next`;
  const nextKey = `${dir.key}.next`;
  if (!(await exists(nextCert))) {
    await rm(nextKey, { force: true });
    return;
  }
  const certNext = await readFile(nextCert, 'utf8');
  if (await exists(nextKey)) {
    if (matches(certNext, await readFile(nextKey, 'utf8'))) {
      await rename(nextKey, dir.key);
      await rename(nextCert, dir.cert);
      return;
    }
  } else if (matches(certNext, await readFile(dir.key, 'utf8'))) {
    await rename(nextCert, dir.cert); // the key was renamed already
    return;
  }
  await rm(nextKey, { force: true });
  await rm(nextCert, { force: true });
}

/** Loads the credentials; an expired certificate cannot be used or renewed: enrol again. */
export async function loadCredentials(dir: StateDir, now: Date): Promise<Credentials> {
  await completeSwap(dir);
  const [keyPem, certPem, caPem] = await Promise.all([readSecretFile(dir.key), readFile(dir.cert, 'utf8'), readFile(dir.ca, 'utf8')]);
  const cert = new X509Certificate(certPem);
  const notAfter = new Date(cert.validTo);
  if (notAfter.getTime() <= now.getTime()) {
    throw new AgentError(
      'certificate_expired',
      `the agent certificate expired at ${notAfter.toISOString()}; it cannot be renewed: enrol again with \`vigil-agent enrol JOIN --state-dir ${dir.dir}\``,
    );
  }
  return { keyPem, certPem, caPem, notBefore: new Date(cert.validFrom), notAfter, serial: cert.serialNumber.toLowerCase() };
}

/** Stores a renewed key and certificate; the key is written 0600 and never leaves this host. */
export async function saveRenewed(dir: StateDir, keyPem: string, certPem: string): Promise<void> {
  if (!matches(certPem, keyPem)) throw new AgentError('enrol_refused', 'the renewed certificate does not match the new key');
  await writeSecretFile(`${dir.key}.next`, keyPem, { overwrite: true });
  await writePublicFile(`${dir.cert}.next`, certPem);
  await rename(`${dir.key}.next`, dir.key);
  await rename(`${dir.cert}.next`, dir.cert);
}

/** When to renew: at a random point between 70 % and 90 % of the certificate's lifetime. */
export function renewalTime(c: Pick<Credentials, 'notBefore' | 'notAfter'>, random: () => number = Math.random): Date {
  const life = c.notAfter.getTime() - c.notBefore.getTime();
  return new Date(c.notBefore.getTime() + Math.round(life * (0.7 + 0.2 * random())));
}
