/**
 * Delivery under faults with a fleet (issue 16, "Bad input and faults"; docs/delivery.md): 20
 * simulated agents, each its own enrolled identity and mutual-TLS stream (test/support/raw-fleet.ts),
 * send 3,000 numbered deltas each in batches of 300 as fast as their acks allow, so the controller
 * is busy with group commits that hold several agents' slices. Then:
 *
 * - the controller is killed with SIGKILL while a group commit is open and part of the burst is
 *   committed for several agents: everything acked before the kill is in Postgres at that moment,
 *   and once the controller is back the agents resend what was not acked and it is stored once;
 * - Postgres is restarted ('immediate', a crash for the server) while a group commit is open, the
 *   controller staying up: everything acked before it is in Postgres afterwards, the controller
 *   recovers on its own and every delta is stored once.
 *
 * Each ends with every seq 1..3,000 of every agent in file_events exactly once, the agents'
 * committed seqs at 3,000 and accounted for, and the current state at each path's last delta.
 * Runs against a Postgres cluster of its own (it restarts it), in the Postgres pass of the suite.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import pg from 'pg';
import { tempRoot } from '../support/controllers.js';
import { createServerDatabase } from '../support/databases.js';
import { freePort, postgresBinDir, startPrivatePostgres, type PrivatePostgres } from '../support/private-postgres.js';
import { BIN, runOk, startDaemon, waitFor, type Daemon } from '../support/processes.js';
import { checkFleetStored, createRawFleet, enrolFleet, openTransactions, partlyCommitted, storedDelivery, type FleetMember, type RawFleet } from '../support/raw-fleet.js';

const AGENTS = 20;
const BATCH = 300;
const PER_AGENT = 10 * BATCH;
/** Agents that must be part-way through their burst in Postgres when the fault strikes. */
const PARTLY_AT_FAULT = 5;

const skip = !process.env.DATABASE_URL ? 'runs in the Postgres pass (DATABASE_URL)' : !postgresBinDir() ? 'needs the Postgres server binaries and root' : false;

describe('delivery under faults, a fleet of agents', { timeout: 300_000, skip }, () => {
  const tmp = tempRoot('vigil-fleet-faults-');
  let pgc: PrivatePostgres;
  let dbUrl = '';
  let env: NodeJS.ProcessEnv;
  let controller: Daemon | undefined;
  let address = '';
  let listenPort = 0;
  const controllerLogs: string[] = [];
  let fleets: FleetMember[][] = [];
  const running: RawFleet[] = [];

  const ctl = (...args: string[]) => runOk(BIN.vigilctl, ['--controller', address, ...args], env);
  const startController = async () => {
    controller = startDaemon(BIN.controller, ['--listen', `127.0.0.1:${listenPort}`, '--enrol-listen', '127.0.0.1:0'], env);
    address = (JSON.parse(await controller.firstLine) as { listening: string }).listening;
  };
  const connectDb = async () => {
    const db = new pg.Client({ connectionString: dbUrl });
    await db.connect();
    db.on('error', () => undefined); // a restart ends it; the test opens another
    return db;
  };
  const exited = () => (controller && (controller.child.exitCode !== null || controller.child.signalCode !== null) ? `; the controller exited (${controller.child.exitCode ?? controller.child.signalCode}): ${controller.log().slice(-3000)}` : '');

  /** Starts the fleet and waits until the burst is part-way in Postgres for several agents with a group commit open. */
  const startBurst = async (members: FleetMember[], db: pg.Client) => {
    const fleet = createRawFleet({ members, address: () => address, deltasPerAgent: PER_AGENT, batchSize: BATCH });
    running.push(fleet);
    const ids = members.map((m) => m.id);
    const t0 = Date.now();
    fleet.start();
    const seen = await waitFor(
      `${PARTLY_AT_FAULT} agents part-way committed, with a group commit open`,
      async () => {
        const partly = await partlyCommitted(db, ids, PER_AGENT);
        if (partly < PARTLY_AT_FAULT) return undefined;
        const open = await openTransactions(db);
        return open > 0 ? { partly, open } : undefined;
      },
      60_000,
      5,
    ).catch((err: Error) => {
      throw new Error(`${err.message}${exited()}; fleet ${JSON.stringify(fleet.views().map((v) => v.acked))}`);
    });
    return { fleet, ids, t0, ...seen };
  };

  /** Every ack an agent holds names seqs that were in Postgres (read after the ack was taken). */
  const assertAckedStored = async (db: pg.Client, members: FleetMember[], acked: Map<string, number>, what: string) => {
    const stored = await storedDelivery(
      db,
      members.map((m) => m.id),
    );
    const problems: string[] = [];
    for (const [i, m] of members.entries()) {
      const s = stored.get(m.id)!;
      const a = acked.get(m.id)!;
      // History rows are keyed (agent, seq): events = max = committed means seqs 1..committed, once each.
      if (s.committedSeq < a) problems.push(`agent ${i}: acked up to ${a}, Postgres committed ${s.committedSeq}`);
      if (s.events !== s.committedSeq || (s.maxSeq ?? 0) !== s.committedSeq) problems.push(`agent ${i}: ${s.events} events, highest seq ${s.maxSeq}, committed seq ${s.committedSeq}`);
    }
    assert.deepEqual(problems, [], `${what}: every acked delta is in Postgres`);
    return stored;
  };

  /** Waits for the fleet to deliver everything, then checks Postgres and the agents' view. */
  const assertDelivered = async (t: TestContext, fleet: RawFleet, members: FleetMember[], db: pg.Client, what: string) => {
    await waitFor(`${what}: every agent's last seq acked`, () => fleet.finished(), 120_000, 20).catch((err: Error) => {
      throw new Error(`${err.message}${exited()}; acked ${JSON.stringify(fleet.views().map((v) => v.acked))}; stream endings ${JSON.stringify(fleet.endings())}; violations ${fleet.violations().slice(0, 5).join('; ')}`);
    });
    assert.deepEqual(fleet.violations(), [], `${what}: the agents saw no breach of the delivery contract`);
    assert.deepEqual(await checkFleetStored(db, members, PER_AGENT), [], `${what}: every seq stored once, accounted for, state at the last delta`);
    const views = fleet.views();
    const sent = views.reduce((n, v) => n + v.deltasSent, 0);
    const resent = sent - AGENTS * PER_AGENT;
    t.diagnostic(`${what}: ${AGENTS * PER_AGENT} deltas, ${resent} resent, ${views.reduce((n, v) => n + v.streams, 0) - AGENTS} reconnects (stream endings ${JSON.stringify(fleet.endings())})`);
    return { resent, views };
  };

  before(async () => {
    pgc = await startPrivatePostgres();
    const db = await createServerDatabase(pgc.url);
    dbUrl = db.url;
    env = { ...process.env, VIGIL_HOME: join(tmp.root, 'home'), DATABASE_URL: db.url, VIGIL_LOG_LEVEL: 'info' };
    delete env.SLACK_TOKEN;
    listenPort = await freePort();
    await runOk(BIN.vigilctl, ['init'], env);
    await startController();
    const { joinString } = JSON.parse(await ctl('tokens', 'create', '--json', '--ttl', '10m', '--uses', String(2 * AGENTS))) as { joinString: string };
    const all = await enrolFleet(joinString, tmp.root, 2 * AGENTS);
    fleets = [all.slice(0, AGENTS), all.slice(AGENTS)];
  });

  after(async () => {
    for (const f of running) f.stop();
    // Bounded: after a failure, a stream the fleet left half-open can hold a graceful shutdown.
    const c = controller;
    const hard = setTimeout(() => {
      process.stderr.write('fleet-faults: the controller did not stop on SIGTERM within 15 s; killed\n');
      c?.child.kill('SIGKILL');
    }, 15_000);
    await c?.kill();
    clearTimeout(hard);
    pgc?.stop();
    tmp.remove();
  });

  it('controller killed with SIGKILL mid group-commit: every acked delta is in Postgres, the rest resent and stored once', async (t) => {
    const members = fleets[0]!;
    const db = await connectDb();
    try {
      const { fleet, t0, partly, open } = await startBurst(members, db);
      await controller!.kill('SIGKILL');
      controllerLogs.push(controller!.log());
      controller = undefined;
      // Read Postgres first, then the acks: any ack read by now was sent before the controller died.
      const stored = await storedDelivery(
        db,
        members.map((m) => m.id),
      );
      const acked = fleet.acked();
      const views = fleet.views();
      await assertAckedStored(db, members, acked, 'at the kill');
      const committed = [...stored.values()].map((s) => s.committedSeq);
      assert.ok(committed.filter((c) => c > 0 && c < PER_AGENT).length >= PARTLY_AT_FAULT, `several agents part-way at the kill: ${JSON.stringify(committed)}`);
      const inFlight = views.filter((v) => v.sentUpTo > v.acked).length;
      assert.ok(inFlight > 0, 'some agents had deltas sent and not acked when the controller died');
      const lostAcks = members.filter((m) => stored.get(m.id)!.committedSeq > acked.get(m.id)!).length;
      t.diagnostic(
        `killed after ${Date.now() - t0} ms with ${open} transactions open and ${partly} agents part-way: ${committed.reduce((a, b) => a + b, 0)} of ${AGENTS * PER_AGENT} committed, ` +
          `${[...acked.values()].reduce((a, b) => a + b, 0)} acked; ${inFlight} agents with unacked deltas in flight, ${lostAcks} with commits whose ack never arrived`,
      );

      await startController();
      const { resent } = await assertDelivered(t, fleet, members, db, 'after the controller was killed');
      assert.ok(resent > 0, 'what was not acked at the kill was sent again');
      t.diagnostic(`burst delivered in ${Date.now() - t0} ms in all`);
    } finally {
      for (const f of running) f.stop();
      await db.end().catch(() => undefined);
    }
  });

  it('Postgres restarted mid group-commit during a fleet burst: the controller recovers, every acked delta kept, nothing lost or doubled', async (t) => {
    const members = fleets[1]!;
    if (!controller) await startController(); // the test before failed with it down
    let db = await connectDb();
    try {
      const pid = controller!.child.pid;
      const { fleet, t0, partly, open } = await startBurst(members, db);
      // pg_ctl runs synchronously: no ack can arrive between this read and the stop.
      const acked = fleet.acked();
      pgc.restart('immediate');
      void db.end().catch(() => undefined); // the restart ended its connection
      db = await connectDb();
      await assertAckedStored(db, members, acked, 'after the restart');
      t.diagnostic(`Postgres restarted after ${Date.now() - t0} ms with ${open} transactions open and ${partly} agents part-way; ${[...acked.values()].reduce((a, b) => a + b, 0)} deltas acked before it`);

      const { views } = await assertDelivered(t, fleet, members, db, 'after Postgres restarted');
      assert.ok(views.some((v) => v.streams > 1), 'the restart broke streams in flight (they reconnected)');
      assert.equal(controller!.child.exitCode, null, 'the controller kept running');
      assert.equal(controller!.child.pid, pid);
      t.diagnostic(`burst delivered in ${Date.now() - t0} ms in all`);
    } finally {
      for (const f of running) f.stop();
      await db.end().catch(() => undefined);
    }
  });
});
