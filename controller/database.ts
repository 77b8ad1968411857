import type { Logger } from 'pino';
import { createPgliteSql, createPgSql, migrate, type Sql } from './store/index.js';

/** The Postgres server DATABASE_URL names, or embedded PGlite in the home; migrated before use. */
export async function openDatabase(databaseUrl: string | undefined, dataDir: string, logger: Logger): Promise<Sql> {
  let sql: Sql;
  if (databaseUrl) {
    logger.info({ store: 'postgres' }, 'using the Postgres server from DATABASE_URL');
    sql = createPgSql(databaseUrl);
  } else {
    logger.info({ store: 'pglite', dataDir }, 'using embedded Postgres (PGlite)');
    sql = await createPgliteSql(dataDir);
  }
  const applied = await migrate(sql);
  if (applied.length) logger.info({ applied }, 'database migrations applied');
  return sql;
}
