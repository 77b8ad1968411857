import pg from 'pg';
import { asDatabaseError } from './database-unavailable.js';
import { checkChannel, type Sql, type SqlQueryable } from './sql.js';

/** A Postgres server through a pg pool. The URL's password is never logged. */
export function createPgSql(connectionString: string, opts: { max?: number } = {}): Sql {
  const pool = new pg.Pool({ connectionString, max: opts.max ?? 10 });
  // An idle client losing its connection (server restart) must not crash the process.
  pool.on('error', () => undefined);
  return {
    kind: 'postgres',
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    async query(text, params) {
      try {
        return (await pool.query(text, params as unknown[] | undefined)).rows;
      } catch (err) {
        throw asDatabaseError(err);
      }
    },
    async transaction(fn) {
      const client = await pool.connect().catch((err: unknown) => {
        throw asDatabaseError(err);
      });
      // A checked-out client whose connection drops (server restart) emits 'error': without a
      // listener that would crash the process. The failing query rejects; the client is discarded.
      let broken: Error | undefined;
      const onError = (err: Error) => {
        broken = err;
      };
      client.on('error', onError);
      const tx: SqlQueryable = {
        async query(text, params) {
          try {
            return (await client.query(text, params as unknown[] | undefined)).rows;
          } catch (err) {
            throw asDatabaseError(err);
          }
        },
      };
      try {
        await tx.query('BEGIN');
        const out = await fn(tx);
        await tx.query('COMMIT');
        return out;
      } catch (err) {
        // A connection that cannot even roll back is broken: it must not go back to the pool.
        await client.query('ROLLBACK').catch((e: unknown) => {
          broken ??= e instanceof Error ? e : new Error(String(e));
        });
        throw err;
      } finally {
        client.off('error', onError);
        client.release(broken);
      }
    },
    async close() {
      await pool.end();
    },
    async listen(channel, onPayload, onReconnect) {
      checkChannel(channel);
      let stopped = false;
      let client: pg.Client | null = null;
      let first = true;
      // A dedicated connection with TCP keepalive (a half-open connection must not go unnoticed);
      // when it drops (server restart, failover), it reconnects, listens again and says so.
      const connect = async (): Promise<void> => {
        while (!stopped) {
          const c = new pg.Client({ connectionString, keepAlive: true, keepAliveInitialDelayMillis: 10_000 });
          c.on('error', () => undefined);
          c.on('notification', (n) => {
            if (n.channel === channel) onPayload(n.payload ?? '');
          });
          try {
            await c.connect();
            await c.query(`listen ${channel}`);
            client = c;
            c.once('end', () => {
              client = null;
              if (!stopped) void connect();
            });
            if (!first) onReconnect?.();
            first = false;
            return;
          } catch {
            await c.end().catch(() => undefined);
            await new Promise((r) => setTimeout(r, 500));
          }
        }
      };
      await connect();
      return async () => {
        stopped = true;
        await client?.end().catch(() => undefined);
      };
    },
  };
}
