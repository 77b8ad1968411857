import { PGlite } from '@electric-sql/pglite';
import { checkChannel, type Sql } from './sql.js';

/** Embedded Postgres (PGlite, WASM) in dataDir, or in memory when dataDir is omitted. */
export async function createPgliteSql(dataDir?: string): Promise<Sql> {
  const db = await PGlite.create(dataDir);
  return {
    kind: 'pglite',
    async query(text, params) {
      return (await db.query(text, params as unknown[] | undefined)).rows as never[];
    },
    async transaction(fn) {
      return db.transaction((tx) =>
        fn({
          async query(text, params) {
            return (await tx.query(text, params as unknown[] | undefined)).rows as never[];
          },
        }),
      );
    },
    async close() {
      await db.close();
    },
    async listen(channel, onPayload) {
      const unlisten = await db.listen(checkChannel(channel), onPayload);
      return () => unlisten();
    },
  };
}
