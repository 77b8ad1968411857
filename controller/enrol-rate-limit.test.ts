import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testDatabaseKinds, type TestDatabase } from '../test/support/databases.js';
import { createFailureLimiter } from './enrol-rate-limit.js';
import { createEnrolFailureStore } from './store/index.js';

for (const kind of testDatabaseKinds()) {
  describe(`enrolment failure limit on ${kind.name}`, () => {
    let db: TestDatabase;
    let now = Date.parse('2026-06-01T00:00:00Z');
    const clock = () => new Date(now);
    /** A replica's limiter: every replica shares the database's count. */
    const replica = () => createFailureLimiter({ maxFailures: 3, windowMs: 60_000, store: createEnrolFailureStore(db.sql), clock });
    before(async () => {
      db = await kind.open();
    });
    after(async () => {
      await db.drop();
    });

    it('failures on one replica limit the address on another, until the oldest leaves the window', async () => {
      const a = replica();
      const b = replica();
      await a.recordFailure('192.0.2.1');
      now += 10_000;
      await b.recordFailure('192.0.2.1');
      assert.equal(await a.blockedFor('192.0.2.1'), 0, 'two of three');
      now += 10_000;
      await a.recordFailure('192.0.2.1');
      assert.equal(await b.blockedFor('192.0.2.1'), 40_000, 'blocked on the other replica until the first failure is a minute old');
      assert.equal(await b.blockedFor('198.51.100.1'), 0, 'another address is not');
      now += 40_001;
      assert.equal(await a.blockedFor('192.0.2.1'), 0);
    });

    it('failures past the window are forgotten as new ones come', async () => {
      const a = replica();
      await a.recordFailure('203.0.113.5');
      now += 120_000;
      await a.recordFailure('203.0.113.6');
      const rows = await db.sql.query('select source from enrol_failures order by source');
      assert.deepEqual(rows.map((r) => r.source), ['203.0.113.6']);
    });
  });
}
