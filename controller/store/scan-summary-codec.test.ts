import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testDatabaseKinds, type TestDatabase } from '../../test/support/databases.js';
import { ControllerError } from '../errors.js';
import { createAgentStore } from './agent-store.js';
import { createCommandStore, type CommandStore } from './command-store.js';
import { decodeScanSummary, encodeScanSummary } from './scan-summary-codec.js';

const summary = { filesScanned: 812, changes: 3, errors: 0, startedAt: new Date('2026-04-01T08:00:00.001Z'), finishedAt: new Date('2026-04-01T08:00:09.999Z') };

describe('stored scan summary', () => {
  it('round-trips through its JSON form, times as ISO strings', () => {
    const json = JSON.parse(JSON.stringify(encodeScanSummary(summary))) as unknown;
    assert.deepEqual(json, { filesScanned: 812, changes: 3, errors: 0, startedAt: '2026-04-01T08:00:00.001Z', finishedAt: '2026-04-01T08:00:09.999Z' });
    assert.deepEqual(decodeScanSummary(json, 'row'), summary);
  });

  it('refuses what is not one, naming the row and the field', () => {
    const good = encodeScanSummary(summary);
    const bad: [unknown, RegExp][] = [
      [null, /row: not a stored scan summary/],
      [{ ...good, changes: '3' }, /changes/],
      [{ ...good, errors: -1 }, /errors/],
      [{ ...good, startedAt: null }, /startedAt/],
      [{ ...good, finishedAt: 'yesterday' }, /finishedAt/],
      [{ ...good, policyVersion: 2 }, /unrecognized|policyVersion/i],
    ];
    for (const [json, message] of bad) {
      assert.throws(() => decodeScanSummary(json, 'row'), (e: unknown) => e instanceof ControllerError && e.code === 'internal' && message.test(e.message), JSON.stringify(json));
    }
  });

  for (const kind of testDatabaseKinds()) {
    describe(`in the command store on ${kind.name}`, () => {
      let db: TestDatabase;
      before(async () => {
        db = await kind.open();
        await createAgentStore(db.sql, () => new Date()).create({ id: 'a1', hostname: 'h1', tokenId: 't', labels: {} });
      });
      const create = async (commands: CommandStore) => {
        const [c] = await commands.createGroup({ groupId: `g-${Math.random()}`, kind: 'rescan', args: { fullHash: false }, createdBy: 'op', expiresAt: new Date('2099-01-01T00:00:00Z'), targets: { agentIds: ['a1'] } });
        return c!.id;
      };
      after(async () => {
        await db.drop();
      });

      it('a completed command gives its summary back typed; another agent cannot complete it', async () => {
        const commands = createCommandStore(db.sql, () => new Date('2026-04-01T08:00:10Z'));
        const id = await create(commands);
        assert.equal((await commands.get([id]))[0]!.result, null);
        assert.equal(await commands.complete(id, 'a2', summary), false);
        assert.equal(await commands.complete(id, 'a1', summary), true);
        const [rec] = await commands.get([id]);
        assert.deepEqual(rec!.result, summary);
        assert.deepEqual(rec!.completedAt, new Date('2026-04-01T08:00:10Z'));
      });

      it('a stored result that is not a summary is an error, not a guess', async () => {
        const commands = createCommandStore(db.sql, () => new Date());
        const id = await create(commands);
        await db.sql.query(`update commands set result = '{"filesScanned": 1}' where id = $1`, [id]);
        await assert.rejects(commands.get([id]), (e: unknown) => e instanceof ControllerError && new RegExp(`commands.result of ${id}`).test(e.message));
      });
    });
  }
});
