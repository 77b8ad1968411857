import { constants } from 'node:fs';
import { mkdir, open, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createPrivateKey } from 'node:crypto';
import { PkiError } from './errors.js';

/** Writes a private key (or other secret) with mode 0600, atomically; never overwrites unless asked. */
export async function writeSecretFile(path: string, data: string, opts: { overwrite?: boolean } = {}): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  if (!opts.overwrite) {
    const exists = await stat(path).then(() => true, () => false);
    if (exists) throw new PkiError('file_exists', `${path} exists already; not overwriting it`);
  }
  const tmp = `${path}.${process.pid}.tmp`;
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
  try {
    await fh.chmod(0o600);
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

/** Writes a public file (certificate, address) atomically, mode 0644. */
export async function writePublicFile(path: string, data: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, data, { mode: 0o644 });
  await rename(tmp, path);
}

/** Reads a private key file, refusing one that group or others can read. */
export async function readSecretFile(path: string): Promise<string> {
  const st = await stat(path);
  if ((st.mode & 0o077) !== 0) {
    throw new PkiError(
      'insecure_key_file',
      `${path} is readable by group or others (mode ${(st.mode & 0o777).toString(8)}); run chmod 600 ${path}`,
    );
  }
  return readFile(path, 'utf8');
}

/** PKCS#8 PEM encrypted with AES-256-CBC (scrypt-free PBES2 as OpenSSL writes it). */
export function encryptPrivateKey(keyPem: string, passphrase: string): string {
  return createPrivateKey(keyPem).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }).toString();
}

/** Returns an unencrypted PEM; an encrypted one needs the passphrase, and a wrong one is a clear error. */
export function decryptPrivateKey(keyPem: string, passphrase: string | undefined, what: string): string {
  if (!keyPem.includes('ENCRYPTED')) return keyPem;
  if (!passphrase) throw new PkiError('key_encrypted', `${what} is encrypted: set VIGIL_CA_PASSPHRASE`);
  try {
    return createPrivateKey({ key: keyPem, format: 'pem', passphrase }).export({ type: 'pkcs8', format: 'pem' }).toString();
  } catch (cause) {
    throw new PkiError('key_encrypted', `${what}: wrong passphrase (VIGIL_CA_PASSPHRASE)`, { cause });
  }
}
