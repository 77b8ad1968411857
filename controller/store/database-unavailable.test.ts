import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { ControllerError } from '../errors.js';
import { asDatabaseError, isDatabaseUnavailable } from './database-unavailable.js';

const serverError = (code: string) => Object.assign(new pg.DatabaseError('reported by the server', 0, 'error'), { code });

describe('database errors as callers see them', () => {
  it('a cut connection, a server shutting down or starting, a refused connection: unavailable', () => {
    for (const err of [new Error('Connection terminated unexpectedly'), Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), serverError('57P01'), serverError('57P03'), serverError('08006')]) {
      assert.equal(isDatabaseUnavailable(err), true, String(err));
      const mapped = asDatabaseError(err);
      assert.ok(mapped instanceof ControllerError && mapped.code === 'unavailable' && mapped.cause === err);
    }
  });

  it('a statement the server refused stays what it is', () => {
    for (const code of ['23505', '42601', '22P02']) {
      const err = serverError(code);
      assert.equal(isDatabaseUnavailable(err), false);
      assert.equal(asDatabaseError(err), err);
    }
    assert.equal(asDatabaseError('not an error'), 'not an error');
  });
});
