import { tokenSecretMatches, hashTokenSecret, type Token } from '../../pki/index.js';
import type { Clock } from './clock.js';
import { date, num, type SqlQueryable } from './sql.js';

export interface TokenRecord {
  readonly id: string;
  readonly createdAt: Date;
  readonly createdBy: string;
  readonly expiresAt: Date;
  readonly usesAllowed: number;
  readonly uses: number;
  readonly revokedAt: Date | null;
  readonly labels: Record<string, string>;
}

export type ConsumeRefusal = 'unknown' | 'bad_secret' | 'expired' | 'revoked' | 'used_up';
export type ConsumeResult = { readonly ok: true; readonly token: TokenRecord } | { readonly ok: false; readonly reason: ConsumeRefusal };

export interface NewToken {
  readonly token: Token;
  readonly ttlMs: number;
  readonly uses: number;
  readonly createdBy: string;
  readonly labels?: Record<string, string>;
}

/** Enrolment tokens: only a hash of the secret is stored; uses are consumed atomically. */
export interface TokenStore {
  create(t: NewToken): Promise<TokenRecord>;
  /**
   * Checks the secret in constant time and takes one use. Must run inside a transaction (a wrong
   * secret for a usable token takes a use and gives it back in it).
   */
  consume(token: Token): Promise<ConsumeResult>;
  /** True when the token exists and its secret matches (constant time); takes nothing. */
  matches(token: Token): Promise<boolean>;
  list(): Promise<TokenRecord[]>;
  revoke(id: string): Promise<boolean>;
}

const COLUMNS = 'id, created_at, created_by, expires_at, uses_allowed, uses, revoked_at, labels';

function toRecord(r: Record<string, unknown>): TokenRecord {
  return {
    id: r.id as string,
    createdAt: date(r.created_at)!,
    createdBy: r.created_by as string,
    expiresAt: date(r.expires_at)!,
    usesAllowed: num(r.uses_allowed),
    uses: num(r.uses),
    revokedAt: date(r.revoked_at),
    labels: (r.labels ?? {}) as Record<string, string>,
  };
}

export function createTokenStore(db: SqlQueryable, clock: Clock): TokenStore {
  return {
    async create({ token, ttlMs, uses, createdBy, labels = {} }) {
      const now = clock();
      const rows = await db.query(
        `insert into enrolment_tokens (id, secret_hash, created_at, created_by, expires_at, uses_allowed, labels)
         values ($1, $2, $3, $4, $5, $6, $7) returning ${COLUMNS}`,
        [token.id, hashTokenSecret(token.secret), now, createdBy, new Date(now.getTime() + ttlMs), uses, JSON.stringify(labels)],
      );
      return toRecord(rows[0]!);
    },
    async consume(token) {
      // One statement when the token is good (an enrolment's usual case): the use is taken, and the
      // row locked, only while the token is unrevoked, unexpired and not used up; the secret is then
      // compared here in constant time, and a wrong one gives the use back before the transaction
      // ends. Anything else is refused below, for the reason the row gives.
      const now = clock();
      const taken = await db.query(
        `update enrolment_tokens set uses = uses + 1
          where id = $1 and revoked_at is null and expires_at > $2 and uses < uses_allowed
          returning ${COLUMNS}, secret_hash`,
        [token.id, now],
      );
      if (taken[0]) {
        if (tokenSecretMatches(token.secret, Buffer.from(taken[0].secret_hash as Uint8Array))) return { ok: true, token: toRecord(taken[0]) };
        await db.query('update enrolment_tokens set uses = uses - 1 where id = $1', [token.id]);
        return { ok: false, reason: 'bad_secret' };
      }
      // Checked in this order so that neither an unknown id nor a wrong secret learns the token's state.
      const rows = await db.query(`select ${COLUMNS}, secret_hash from enrolment_tokens where id = $1 for update`, [token.id]);
      const row = rows[0];
      if (!row) return { ok: false, reason: 'unknown' };
      if (!tokenSecretMatches(token.secret, Buffer.from(row.secret_hash as Uint8Array))) return { ok: false, reason: 'bad_secret' };
      const rec = toRecord(row);
      if (rec.revokedAt) return { ok: false, reason: 'revoked' };
      if (rec.expiresAt.getTime() <= now.getTime()) return { ok: false, reason: 'expired' };
      return { ok: false, reason: 'used_up' };
    },
    async matches(token) {
      const rows = await db.query('select secret_hash from enrolment_tokens where id = $1', [token.id]);
      return !!rows[0] && tokenSecretMatches(token.secret, Buffer.from(rows[0].secret_hash as Uint8Array));
    },
    async list() {
      return (await db.query(`select ${COLUMNS} from enrolment_tokens order by created_at`)).map(toRecord);
    },
    async revoke(id) {
      const rows = await db.query('update enrolment_tokens set revoked_at = $2 where id = $1 and revoked_at is null returning id', [id, clock()]);
      return rows.length > 0;
    },
  };
}
