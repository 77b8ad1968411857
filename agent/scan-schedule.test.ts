import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_LIMITS, defineRule } from '../core/policy-defaults.js';
import { createScanSchedule } from './scan-schedule.js';
import { waitFor } from '../test/support/processes.js';

describe('scan schedule', () => {
  it('starts stat-only re-checks and full re-hashes at the shortest interval any rule asks for', async () => {
    const runs: boolean[] = [];
    const schedule = createScanSchedule((fullHash) => runs.push(fullHash));
    try {
      schedule.set({
        version: 1,
        limits: DEFAULT_LIMITS,
        rules: [
          defineRule({ name: 'slow', paths: ['/a'], recheckSeconds: 3600, rehashSeconds: 3600 }),
          defineRule({ name: 'fast', paths: ['/b'], recheckSeconds: 0.02, rehashSeconds: 0.05 }),
        ],
      });
      await waitFor('a re-check and a re-hash', () => runs.includes(false) && runs.includes(true), 5_000, 5);
      const rechecks = runs.filter((f) => !f).length;
      const rehashes = runs.filter((f) => f).length;
      assert.ok(rechecks >= rehashes, `${rechecks} re-checks, ${rehashes} re-hashes`);
    } finally {
      schedule.stop();
    }
  });
});
