import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Sql } from '../store/index.js';
import { createControllerReadiness } from './controller-readiness.js';

/** A database whose `select 1` answers, fails, or never answers. */
function fakeSql(answer: 'ok' | 'fail' | 'hang'): Sql {
  const query = () => (answer === 'ok' ? Promise.resolve([{ '?column?': 1 }]) : answer === 'fail' ? Promise.reject(new Error('connection refused')) : new Promise<never>(() => undefined));
  return { kind: 'postgres', query, transaction: () => Promise.reject(new Error('unused')), close: async () => undefined, listen: () => Promise.reject(new Error('unused')) } as unknown as Sql;
}

describe('controller readiness', () => {
  it('says why it is not ready, step by step, until it is; then not again once stopping', async () => {
    const r = createControllerReadiness();
    assert.match((await r.notReady())!, /database not open or migrations not done/);
    r.databaseReady(fakeSql('ok'));
    assert.equal(await r.notReady(), 'listeners not up');
    r.listening();
    assert.equal(await r.notReady(), null);
    r.stopping();
    assert.equal(await r.notReady(), 'stopping');
  });

  it('is not ready while Postgres fails or does not answer in time', async () => {
    const failing = createControllerReadiness();
    failing.databaseReady(fakeSql('fail'));
    failing.listening();
    assert.equal(await failing.notReady(), 'Postgres unreachable (connection refused)');
    const hanging = createControllerReadiness({ probeTimeoutMs: 50 });
    hanging.databaseReady(fakeSql('hang'));
    hanging.listening();
    assert.equal(await hanging.notReady(), 'Postgres unreachable (no answer in 50 ms)');
  });
});
