import pg from 'pg';
import type { Sql, SqlQueryable } from './sql.js';

/** A Postgres server through a pg pool. The URL's password is never logged. */
export function createPgSql(connectionString: string, opts: { max?: number } = {}): Sql {
  const pool = new pg.Pool({ connectionString, max: opts.max ?? 10 });
  // An idle client losing its connection (server restart) must not crash the process.
  pool.on('error', () => undefined);
  return {
    kind: 'postgres',
    async query(text, params) {
      const res = await pool.query(text, params as unknown[] | undefined);
      return res.rows;
    },
    async transaction(fn) {
      const client = await pool.connect();
      const tx: SqlQueryable = {
        async query(text, params) {
          return (await client.query(text, params as unknown[] | undefined)).rows;
        },
      };
      try {
        await client.query('BEGIN');
        const out = await fn(tx);
        await client.query('COMMIT');
        return out;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
    async close() {
      await pool.end();
    },
  };
}
