import { date, type SqlQueryable } from './sql.js';

/** Failed enrolment attempts by source address, shared by every replica (migration 14). */
export interface EnrolFailureStore {
  /** Records a failure at `at`, and forgets every failure from before `forgetBefore`. */
  record(source: string, at: Date, forgetBefore: Date): Promise<void>;
  /** The source's newest `limit` failures since `since`, newest first. */
  recent(source: string, since: Date, limit: number): Promise<Date[]>;
}

export function createEnrolFailureStore(db: SqlQueryable): EnrolFailureStore {
  return {
    async record(source, at, forgetBefore) {
      await db.query(
        `with forgotten as (delete from enrol_failures where failed_at < $3)
         insert into enrol_failures (source, failed_at) values ($1, $2)`,
        [source.slice(0, 200), at, forgetBefore],
      );
    },
    async recent(source, since, limit) {
      const rows = await db.query('select failed_at from enrol_failures where source = $1 and failed_at > $2 order by failed_at desc limit $3', [source.slice(0, 200), since, limit]);
      return rows.map((r) => date(r.failed_at)!);
    },
  };
}
