import type { Clock } from './clock.js';
import type { SqlQueryable } from './sql.js';

export interface IssuedCertificateRecord {
  readonly serial: string;
  readonly agentId: string | null;
  /** The SPIFFE ID in the certificate's URI SAN. */
  readonly subject: string;
  /** sha256:hex of the certified public key. */
  readonly keyFingerprint: string;
  readonly tokenId: string | null;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** Every certificate the CA issues is recorded here. */
export interface CertificateStore {
  record(c: IssuedCertificateRecord): Promise<void>;
}

export function createCertificateStore(db: SqlQueryable, clock: Clock): CertificateStore {
  return {
    async record(c) {
      await db.query(
        `insert into certificates (serial, agent_id, subject, key_fingerprint, token_id, not_before, not_after, issued_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [c.serial, c.agentId, c.subject, c.keyFingerprint, c.tokenId, c.notBefore, c.notAfter, clock()],
      );
    },
  };
}
