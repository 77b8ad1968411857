import { readFile } from 'node:fs/promises';
import type { Issuer } from './issuer.js';

/**
 * Records the first operator's certificate, which `vigilctl init` made outside the database, so
 * that it can be revoked like any other. A home without it on the controller host is fine.
 */
export async function recordHomeOperator(certPath: string, issuer: Issuer): Promise<void> {
  let pem: string;
  try {
    pem = await readFile(certPath, 'utf8');
  } catch {
    return; // an operator home without its credential on the controller host
  }
  await issuer.recordOperator(pem);
}
