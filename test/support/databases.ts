import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createPgliteSql, createPgSql, migrate, type Sql } from '../../controller/store/index.js';

/** A database a test owns: made fresh, migrated, dropped after. */
export interface TestDatabase {
  readonly name: string;
  readonly sql: Sql;
  /** For child processes: the URL of this database, or undefined for PGlite. */
  readonly url: string | undefined;
  drop(): Promise<void>;
}

export interface TestDatabaseKind {
  readonly name: string;
  open(): Promise<TestDatabase>;
}

/** Makes a throwaway database on the server DATABASE_URL points at. */
export async function createServerDatabase(adminUrl: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const dbName = `vigil_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${dbName}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${dbName}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      try {
        await c.query(`drop database if exists ${dbName} with (force)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** PGlite always; the Postgres server too when DATABASE_URL is set (as CI does). */
export function testDatabaseKinds(): TestDatabaseKind[] {
  const kinds: TestDatabaseKind[] = [
    {
      name: 'pglite',
      async open() {
        const sql = await createPgliteSql();
        await migrate(sql);
        return { name: 'pglite', sql, url: undefined, drop: () => sql.close() };
      },
    },
  ];
  const adminUrl = process.env.DATABASE_URL;
  if (adminUrl) {
    kinds.push({
      name: 'postgres',
      async open() {
        const db = await createServerDatabase(adminUrl);
        const sql = createPgSql(db.url);
        await migrate(sql);
        return {
          name: 'postgres',
          sql,
          url: db.url,
          async drop() {
            await sql.close();
            await db.drop();
          },
        };
      },
    });
  }
  return kinds;
}
