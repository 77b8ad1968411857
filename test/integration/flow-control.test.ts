/**
 * Flow control (docs/delivery.md): an agent whose backlog the controller cannot ingest as fast as
 * it arrives is held back by HTTP/2 flow control, not buffered by the controller, and other
 * agents' deltas go through meanwhile. The flooding agent is a raw stream that ignores the real
 * agent's in-flight limit and writes 40 MB of deltas at once; its ingest is stalled by holding its
 * agent row (which every group commit locks, store/group-ingest.ts) in a transaction on a
 * connection of the test's own, so it needs a Postgres server.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { VigilHome } from '../../controller/home.js';
import { enrolTestAgent, makeHome, startTestController, tempRoot, testDatabaseEnv, type TestController } from '../support/controllers.js';
import { waitFor } from '../support/processes.js';
import { openRawStream, stateCreds } from '../support/raw-agent.js';

const BATCHES = 200;
const PER_BATCH = 50;
/** Each delta carries a path this long: 200 batches of about 200 KB (under the 256 KiB message cap), 40 MB in all. */
const PATH_BYTES = 4000;
/** What may leave the flooding agent while its ingest is stalled: socket buffers and HTTP/2 windows, far below 40 MB. */
const MAX_FLUSHED_WHILE_STALLED = 80;

const skip = process.env.DATABASE_URL ? false : 'needs a Postgres server (DATABASE_URL): the test holds the agent row from its own connection';

describe('flow control', { timeout: 180_000, skip }, () => {
  const { root, remove } = tempRoot('vigil-flow-');
  let home: VigilHome;
  let ctl: TestController;
  let drop: () => Promise<void>;
  let dbUrl = '';
  let n = 0;
  const enrolNew = () => enrolTestAgent(ctl, join(root, `agent-${n++}`));

  before(async () => {
    home = await makeHome(root, 'home');
    const db = await testDatabaseEnv();
    drop = db.drop;
    dbUrl = db.env.DATABASE_URL!;
    ctl = await startTestController(home, { env: db.env });
  });
  after(async () => {
    await ctl?.stop();
    await drop?.();
    remove();
  });

  it("holds back an agent whose ingest cannot keep up, and lets another agent's deltas through meanwhile", async (t) => {
    const flood = await enrolNew();
    const quiet = await enrolNew();
    const lock = new pg.Client({ connectionString: dbUrl });
    await lock.connect();
    const f = openRawStream(ctl.controller.address, stateCreds(flood.dir));
    const q = openRawStream(ctl.controller.address, stateCreds(quiet.dir));
    try {
      await lock.query('begin');
      await lock.query('select 1 from agents where id = $1 for update', [flood.id]);
      await f.next('welcome');
      let flushed = 0;
      const prefix = Buffer.from(`/flood/${'x'.repeat(PATH_BYTES)}/`);
      for (let b = 0; b < BATCHES; b++) {
        const deltas = Array.from({ length: PER_BATCH }, (_, i) => {
          const seq = b * PER_BATCH + i + 1;
          return { seq: BigInt(seq), path: Buffer.concat([prefix, Buffer.from(String(seq))]), kind: 1, state: { type: 1, size: 1n, sha256: Buffer.alloc(32, seq % 256) }, source: 1 };
        });
        f.send({ msg: { case: 'deltas', value: { deltas } } }, () => flushed++);
      }

      // Another agent, meanwhile: its delta is committed and acked while the flood is stalled.
      await q.next('welcome');
      q.send({ msg: { case: 'deltas', value: { deltas: [{ seq: 1n, path: Buffer.from('/etc/hosts'), kind: 1, state: { type: 1, size: 1n, sha256: Buffer.alloc(32, 7) }, source: 1 }] } } });
      const qAck = await q.next('ack');
      assert.equal(qAck.msg.case === 'ack' && qAck.msg.value.upToSeq, 1n, "the other agent's delta is committed");

      // The flood's writes stop leaving the agent once the windows and buffers are full.
      let last = -1;
      let since = Date.now();
      await waitFor('the flood to stop flushing (flushed count unchanged for 1 s)', () => {
        if (flushed !== last) {
          last = flushed;
          since = Date.now();
        }
        return Date.now() - since >= 1000;
      }, 60_000, 50);
      t.diagnostic(`${flushed} of ${BATCHES} batches left the flooding agent while its ingest was stalled`);
      assert.ok(flushed < MAX_FLUSHED_WHILE_STALLED, `${flushed} of ${BATCHES} batches (about ${Math.round((flushed * PER_BATCH * PATH_BYTES) / 2 ** 20)} MB) left the agent while its ingest was stalled`);
      assert.ok(!f.messages.some((m) => m.msg.case === 'ack'), 'nothing of the flood was acked while its ingest was stalled');

      // Released: everything is committed, once, in order, and acked.
      await lock.query('rollback');
      await waitFor('the whole flood acked', () => f.messages.some((m) => m.msg.case === 'ack' && m.msg.value.upToSeq === BigInt(BATCHES * PER_BATCH)), 120_000, 50);
      await waitFor('every batch flushed', () => flushed === BATCHES, 10_000, 20);
      const { rows } = await lock.query<{ n: number; lo: string; hi: string; distinct_seqs: number }>(
        'select count(*)::int as n, min(seq)::text as lo, max(seq)::text as hi, count(distinct seq)::int as distinct_seqs from file_events where agent_id = $1',
        [flood.id],
      );
      assert.deepEqual(rows[0], { n: BATCHES * PER_BATCH, lo: '1', hi: String(BATCHES * PER_BATCH), distinct_seqs: BATCHES * PER_BATCH });
    } finally {
      f.close();
      q.close();
      await lock.end();
    }
  });
});
