import type { Clock } from './clock.js';
import { date, type SqlQueryable } from './sql.js';

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
  /** 'agent' or 'operator'. */
  readonly kind?: 'agent' | 'operator';
  /** An operator certificate's role. */
  readonly role?: 'admin' | 'viewer';
}

/** One operator certificate, for `vigilctl admins ls`. */
export interface OperatorCertificate {
  readonly subject: string;
  readonly role: string | null;
  readonly serial: string;
  readonly issuedAt: Date;
  readonly notAfter: Date;
  readonly revokedAt: Date | null;
}

export interface CertificateStatus {
  readonly serial: string;
  readonly agentId: string | null;
  readonly subject: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly revokedAt: Date | null;
}

/** A certificates row (or its JSON, times as text) as a status. */
export function certificateStatusFromRow(r: Record<string, unknown>): CertificateStatus {
  return {
    serial: r.serial as string,
    agentId: (r.agent_id as string | null) ?? null,
    subject: r.subject as string,
    notBefore: date(r.not_before)!,
    notAfter: date(r.not_after)!,
    revokedAt: date(r.revoked_at),
  };
}

/** Every certificate the CA issues is recorded here. */
export interface CertificateStore {
  record(c: IssuedCertificateRecord): Promise<void>;
  /** The recorded certificate with this serial (lower-case hex), or null if Vigil never issued it. */
  find(serial: string): Promise<CertificateStatus | null>;
  /** Records a certificate unless its serial is known already (idempotent). */
  ensure(c: IssuedCertificateRecord): Promise<void>;
  /** Revokes every unrevoked operator certificate with this subject; returns how many. */
  revokeOperator(subject: string): Promise<number>;
  /** Every operator certificate, by subject, newest first within a subject. */
  listOperators(): Promise<OperatorCertificate[]>;
}

export function createCertificateStore(db: SqlQueryable, clock: Clock): CertificateStore {
  return {
    async record(c) {
      await db.query(
        `insert into certificates (serial, agent_id, subject, key_fingerprint, token_id, not_before, not_after, issued_at, kind, role)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        [c.serial.toLowerCase(), c.agentId, c.subject, c.keyFingerprint, c.tokenId, c.notBefore, c.notAfter, clock(), c.kind ?? 'agent', c.role ?? null],
      );
    },
    async ensure(c) {
      await db.query(
        `insert into certificates (serial, agent_id, subject, key_fingerprint, token_id, not_before, not_after, issued_at, kind, role)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) on conflict (serial) do update set role = coalesce(certificates.role, excluded.role)`,
        [c.serial.toLowerCase(), c.agentId, c.subject, c.keyFingerprint, c.tokenId, c.notBefore, c.notAfter, clock(), c.kind ?? 'agent', c.role ?? null],
      );
    },
    async revokeOperator(subject) {
      const rows = await db.query(
        "update certificates set revoked_at = $2 where subject = $1 and kind = 'operator' and revoked_at is null returning serial",
        [subject, clock()],
      );
      return rows.length;
    },
    async listOperators() {
      const rows = await db.query("select subject, role, serial, issued_at, not_after, revoked_at from certificates where kind = 'operator' order by subject, issued_at desc");
      return rows.map((r) => ({
        subject: r.subject as string,
        role: (r.role as string | null) ?? null,
        serial: r.serial as string,
        issuedAt: date(r.issued_at)!,
        notAfter: date(r.not_after)!,
        revokedAt: date(r.revoked_at),
      }));
    },
    async find(serial) {
      const rows = await db.query('select serial, agent_id, subject, not_before, not_after, revoked_at from certificates where serial = $1', [serial.toLowerCase()]);
      return rows[0] ? certificateStatusFromRow(rows[0]) : null;
    },
  };
}
