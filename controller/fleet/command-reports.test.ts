import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CommandReport } from '../store/index.js';
import { createCommandReports } from './command-reports.js';

const summary = { filesScanned: 1, changes: 0, errors: 0, startedAt: new Date(0), finishedAt: new Date(0) };
const report = (id: string, agentId = 'a'): CommandReport => ({ id, agentId, result: summary });

/** A fake store: open commands by id → agent; records each statement's reports. */
function fakeStore(open: Map<string, string>, fail?: (batch: readonly CommandReport[]) => boolean) {
  const statements: string[][] = [];
  return {
    statements,
    async completeMany(batch: readonly CommandReport[]) {
      statements.push(batch.map((r) => r.id));
      await new Promise((r) => setImmediate(r));
      if (fail?.(batch)) throw new Error('database unavailable');
      const done = new Set<string>();
      for (const r of batch) {
        if (open.get(r.id) === r.agentId) {
          open.delete(r.id);
          done.add(r.id);
        }
      }
      return done;
    },
  };
}

describe('command reports', () => {
  it("records the reports of one turn in one statement, and says which completed their agent's open command", async () => {
    const store = fakeStore(new Map([['c1', 'a'], ['c2', 'a'], ['c3', 'b']]));
    const reports = createCommandReports(store);
    const results = await Promise.all([reports.record(report('c1')), reports.record(report('c2')), reports.record(report('c3', 'a')), reports.record(report('nope'))]);
    assert.deepEqual(results, [true, true, false, false]);
    assert.deepEqual(store.statements, [['c1', 'c2', 'c3', 'nope']]);
  });

  it('groups what arrives while a statement runs into the next, at most maxBatch each, and a repeated id goes in a later one', async () => {
    const open = new Map(Array.from({ length: 10 }, (_, i) => [`c${i}`, 'a'] as const));
    const store = fakeStore(open);
    const reports = createCommandReports(store, { maxBatch: 4 });
    const first = reports.record(report('c0'));
    await new Promise((r) => setImmediate(r)); // the first statement is running
    const rest = Array.from({ length: 9 }, (_, i) => reports.record(report(`c${i + 1}`)));
    const again = reports.record(report('c1'));
    assert.deepEqual(await Promise.all([first, ...rest, again]), [true, true, true, true, true, true, true, true, true, true, false]);
    assert.deepEqual(store.statements.slice(0, 2), [['c0'], ['c1', 'c2', 'c3', 'c4']]);
    assert.ok(store.statements.length <= 5, `${store.statements.length} statements for 11 reports`);
    assert.ok(store.statements.flat().filter((id) => id === 'c1').length === 2, 'the repeat went in a statement of its own');
    assert.ok(store.statements.every((b) => b.length <= 4 && new Set(b).size === b.length));
    await reports.idle();
  });

  it("a failed statement rejects its own reports only; the next ones are recorded", async () => {
    const store = fakeStore(new Map([['c1', 'a'], ['c2', 'a']]), (batch) => batch.some((r) => r.id === 'c1'));
    const reports = createCommandReports(store);
    await assert.rejects(reports.record(report('c1')), /database unavailable/);
    assert.equal(await reports.record(report('c2')), true);
  });
});
