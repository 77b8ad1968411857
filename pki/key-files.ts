import { constants } from 'node:fs';
import { mkdir, open, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
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
