/**
 * High availability behind a real load balancer (issue 17, item 2; docs/deploy.md "High
 * availability behind a load balancer"): HAProxy in TCP mode (TLS passthrough) in front of two
 * controller replicas on one Postgres database, health-checking each replica's /readyz. Agents
 * enrol and stream through HAProxy only (simulated agents, test/support/raw-fleet.ts). Then:
 *
 * - the replica holding most streams is killed with SIGKILL in the middle of a burst: the agents
 *   reconnect through HAProxy to the other replica and every delta is stored exactly once;
 * - the killed replica is started again: HAProxy sees it ready and new agents land on it;
 * - a rescan issued on the replica that survived reaches every agent, on both replicas;
 * - revocation cuts a stream on either replica (issued through the other one).
 *
 * Postgres pass only: in the PGlite pass one process is the only replica.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createAdminClient, type AdminClient } from '../../controller/vigilctl/admin-client.js';
import type { VigilHome } from '../../controller/home.js';
import { makeHome, tempRoot } from '../support/controllers.js';
import { createServerDatabase } from '../support/databases.js';
import { freePort } from '../support/private-postgres.js';
import { BIN, startDaemon, waitFor, type Daemon } from '../support/processes.js';
import { openRawStream, type RawStream } from '../support/raw-agent.js';
import { checkFleetStored, createRawFleet, enrolFleet, partlyCommitted, type FleetMember, type RawFleet } from '../support/raw-fleet.js';

const AGENTS = 20;
const BATCH = 300;
const PER_AGENT = 10 * BATCH;
const LATE_AGENTS = 6;
const LATE_PER_AGENT = 2 * BATCH;
/** Agents that must be part-way through their burst in Postgres when the replica is killed. */
const PARTLY_AT_KILL = 3;

const haproxyBin = (): boolean => spawnSync('haproxy', ['-v'], { stdio: 'ignore' }).status === 0;
const skip = !process.env.DATABASE_URL
  ? 'runs in the Postgres pass (DATABASE_URL): with PGlite one process is the only replica'
  : !haproxyBin()
    ? 'needs HAProxy (apt-get install haproxy; .ci/run installs it)'
    : false;

interface Replica {
  readonly name: 'a' | 'b';
  readonly listenPort: number;
  readonly enrolPort: number;
  readonly metricsPort: number;
  daemon?: Daemon;
  admin?: AdminClient;
  closeAdmin?: () => void;
}

/** The HAProxy configuration docs/deploy.md shows, with this test's addresses. */
function haproxyConfig(o: { dir: string; agentsPort: number; enrolPort: number; replicas: readonly Replica[] }): string {
  const servers = (port: (r: Replica) => number) => o.replicas.map((r) => `  server ${r.name} 127.0.0.1:${port(r)} check port ${r.metricsPort}`).join('\n');
  return `global
  maxconn 4096
  stats socket ${join(o.dir, 'haproxy.sock')} level admin

defaults
  mode tcp
  timeout connect 2s
  # Agent streams are long-lived: longer than any quiet spell on a stream.
  timeout client 1h
  timeout server 1h
  timeout check 1s
  retries 3
  option redispatch 1

# Agents' mutual-TLS streams: TLS passes through, the replica sees the agent's certificate.
frontend agents
  bind 127.0.0.1:${o.agentsPort}
  default_backend controllers

backend controllers
  balance leastconn
  option httpchk GET /readyz
  http-check expect status 200
  default-server inter 250ms fall 2 rise 2 on-marked-down shutdown-sessions
${servers((r) => r.listenPort)}

# Enrolment (server TLS, the CA pinned by the join string): passed through the same way.
frontend enrol
  bind 127.0.0.1:${o.enrolPort}
  default_backend controllers_enrol

backend controllers_enrol
  balance roundrobin
  option httpchk GET /readyz
  http-check expect status 200
  default-server inter 250ms fall 2 rise 2
${servers((r) => r.enrolPort)}
`;
}

describe('high availability behind HAProxy: two replicas, one Postgres', { timeout: 120_000, skip }, () => {
  const tmp = tempRoot('vigil-ha-');
  let home: VigilHome;
  let dbUrl = '';
  let dropDb: (() => Promise<void>) | undefined;
  let env: NodeJS.ProcessEnv;
  let haproxy: ChildProcess | undefined;
  let haproxyLog = '';
  let agentsAddress = '';
  let enrolAddress = '';
  let db: pg.Client | undefined;
  const replicas: Replica[] = [];
  const running: RawFleet[] = [];
  const rawStreams: RawStream[] = [];
  let fleet: FleetMember[] = [];
  let late: FleetMember[] = [];
  let spare: FleetMember[] = [];
  let victim: Replica | undefined;
  let survivor: Replica | undefined;

  const alive = (r: Replica) => r.daemon !== undefined && r.daemon.child.exitCode === null && r.daemon.child.signalCode === null;

  const startReplica = async (r: Replica) => {
    r.daemon = startDaemon(
      BIN.controller,
      ['--listen', `127.0.0.1:${r.listenPort}`, '--enrol-listen', `127.0.0.1:${r.enrolPort}`, '--metrics-listen', `127.0.0.1:${r.metricsPort}`],
      env,
    );
    const line = JSON.parse(await r.daemon.firstLine) as { listening: string; metrics?: string };
    assert.equal(line.metrics, `127.0.0.1:${r.metricsPort}`);
    r.closeAdmin?.();
    const { client, close } = await createAdminClient(home, line.listening);
    r.admin = client;
    r.closeAdmin = close;
  };

  /** Agent streams connected to a replica, from its /metrics. */
  const streamsOn = async (r: Replica): Promise<number> => {
    const res = await fetch(`http://127.0.0.1:${r.metricsPort}/metrics`);
    const m = /^vigil_agent_streams_connected (\d+)/m.exec(await res.text());
    if (!m) throw new Error('no vigil_agent_streams_connected on /metrics');
    return Number(m[1]);
  };

  /** One command on HAProxy's stats socket; its answer. */
  const haproxyCommand = async (command: string): Promise<string> => {
    const sock = createConnection(join(tmp.root, 'haproxy.sock'));
    let out = '';
    sock.on('data', (d: Buffer) => (out += d.toString()));
    await once(sock, 'connect');
    sock.end(`${command}\n`);
    await once(sock, 'close');
    return out;
  };

  /** HAProxy's view of a backend's servers (name → status: UP, DOWN, DRAIN, ...), from its stats socket. */
  const serverStatus = async (backend: string): Promise<Map<string, string>> => {
    const out = await haproxyCommand('show stat');
    const rows = out.split('\n').map((l) => l.split(','));
    const header = rows[0]!.map((h) => h.replace(/^# /, ''));
    const col = (n: string) => header.indexOf(n);
    return new Map(rows.filter((r) => r[col('pxname')] === backend && r[col('svname')] !== 'FRONTEND' && r[col('svname')] !== 'BACKEND').map((r) => [r[col('svname')]!, r[col('status')]!]));
  };
  const waitStatus = (backend: string, want: Record<string, string>, timeoutMs = 15_000) =>
    waitFor(`HAProxy ${backend} at ${JSON.stringify(want)}`, async () => {
      const s = await serverStatus(backend);
      return Object.entries(want).every(([name, status]) => s.get(name)?.startsWith(status)) ? s : undefined;
    }, timeoutMs, 50);

  const diagnostics = () =>
    replicas.map((r) => `; replica ${r.name} ${alive(r) ? 'running' : 'down'}${r.daemon && !alive(r) && r !== victim ? `: ${r.daemon.log().slice(-2000)}` : ''}`).join('') + (haproxy?.exitCode !== null ? `; haproxy exited: ${haproxyLog.slice(-2000)}` : '');

  const deliver = async (f: RawFleet, members: FleetMember[], total: number, what: string) => {
    await waitFor(`${what}: every agent's last seq acked`, () => f.finished(), 45_000, 20).catch((err: Error) => {
      throw new Error(`${err.message}${diagnostics()}; acked ${JSON.stringify(f.views().map((v) => v.acked))}; endings ${JSON.stringify(f.endings())}; violations ${f.violations().slice(0, 5).join('; ')}`);
    });
    assert.deepEqual(f.violations(), [], `${what}: the agents saw no breach of the delivery contract`);
    assert.deepEqual(await checkFleetStored(db!, members, total), [], `${what}: every seq stored exactly once, accounted for, state at the last delta`);
  };

  before(async () => {
    const created = await createServerDatabase(process.env.DATABASE_URL!);
    dbUrl = created.url;
    dropDb = created.drop;
    // Agents reach the controller at 127.0.0.1 (HAProxy): the server certificate names it.
    home = await makeHome(tmp.root, 'home');
    env = { ...process.env, VIGIL_HOME: home.dir, DATABASE_URL: dbUrl, VIGIL_LOG_LEVEL: 'info' };
    delete env.SLACK_TOKEN;
    delete env.VIGIL_METRICS_LISTEN;
    for (const name of ['a', 'b'] as const) replicas.push({ name, listenPort: await freePort(), enrolPort: await freePort(), metricsPort: await freePort() });
    const agentsPort = await freePort();
    const enrolPort = await freePort();
    agentsAddress = `127.0.0.1:${agentsPort}`;
    enrolAddress = `127.0.0.1:${enrolPort}`;
    // One replica first: it migrates the database; then the second.
    await startReplica(replicas[0]!);
    await startReplica(replicas[1]!);

    const cfg = join(tmp.root, 'haproxy.cfg');
    writeFileSync(cfg, haproxyConfig({ dir: tmp.root, agentsPort, enrolPort, replicas }));
    haproxy = spawn('haproxy', ['-f', cfg, '-db'], { stdio: ['ignore', 'pipe', 'pipe'] });
    haproxy.stdout!.on('data', (d: Buffer) => (haproxyLog += d.toString()));
    haproxy.stderr!.on('data', (d: Buffer) => (haproxyLog += d.toString()));
    await waitFor('the HAProxy stats socket', () => serverStatus('controllers').then((s) => s.size === 2), 10_000, 50).catch((err: Error) => {
      throw new Error(`${err.message}${diagnostics()}`);
    });
    await waitStatus('controllers', { a: 'UP', b: 'UP' });
    await waitStatus('controllers_enrol', { a: 'UP', b: 'UP' });

    db = new pg.Client({ connectionString: dbUrl });
    await db.connect();
    // Enrolment through HAProxy: the join string names the load balancer, as `vigilctl init
    // --enrol-address` does in a real deployment.
    const { joinString } = await replicas[0]!.admin!.createToken({ ttlSeconds: 600, uses: AGENTS + LATE_AGENTS + 2 });
    const viaLb = joinString.replace(/^vigil:\/\/[^?]+/, `vigil://${enrolAddress}`);
    const all = await enrolFleet(viaLb, tmp.root, AGENTS + LATE_AGENTS + 2);
    fleet = all.slice(0, AGENTS);
    late = all.slice(AGENTS, AGENTS + LATE_AGENTS);
    spare = all.slice(AGENTS + LATE_AGENTS);
  });

  after(async () => {
    for (const f of running) f.stop();
    for (const s of rawStreams) s.close();
    await db?.end().catch(() => undefined);
    for (const r of replicas) {
      r.closeAdmin?.();
      const d = r.daemon;
      const hard = setTimeout(() => d?.child.kill('SIGKILL'), 10_000);
      await d?.kill().catch(() => undefined);
      clearTimeout(hard);
    }
    if (haproxy && haproxy.exitCode === null && haproxy.signalCode === null) {
      const exited = once(haproxy, 'exit');
      haproxy.kill('SIGKILL');
      await exited;
    }
    await dropDb?.().catch(() => undefined);
    tmp.remove();
  });

  it('SIGKILL of the replica holding most streams mid-burst: the agents move through HAProxy to the other, nothing lost or doubled', async (t) => {
    const f = createRawFleet({ members: fleet, address: () => agentsAddress, deltasPerAgent: PER_AGENT, batchSize: BATCH });
    running.push(f);
    const ids = fleet.map((m) => m.id);
    const t0 = Date.now();
    f.start();
    // Mid-burst: several agents part-way in Postgres, streams on both replicas.
    const spread = await waitFor(
      'a burst part-way committed, with streams on both replicas',
      async () => {
        if ((await partlyCommitted(db!, ids, PER_AGENT)) < PARTLY_AT_KILL) return undefined;
        const counts = await Promise.all(replicas.map(streamsOn));
        return counts.every((n) => n > 0) ? counts : undefined;
      },
      30_000,
      5,
    ).catch((err: Error) => {
      throw new Error(`${err.message}${diagnostics()}; acked ${JSON.stringify(f.views().map((v) => v.acked))}`);
    });
    victim = spread[0]! >= spread[1]! ? replicas[0]! : replicas[1]!;
    survivor = victim === replicas[0] ? replicas[1]! : replicas[0]!;
    const before = f.views();
    await victim.daemon!.kill('SIGKILL');
    const ackedAtKill = before.reduce((n, v) => n + v.acked, 0);
    t.diagnostic(`killed replica ${victim.name} (streams a/b: ${spread.join('/')}) after ${Date.now() - t0} ms, ${ackedAtKill} of ${AGENTS * PER_AGENT} deltas acked`);
    assert.ok(ackedAtKill < AGENTS * PER_AGENT, 'the burst was not over at the kill');

    await waitStatus('controllers', { [victim.name]: 'DOWN', [survivor.name]: 'UP' });
    await deliver(f, fleet, PER_AGENT, 'after the kill');
    const views = f.views();
    assert.ok(views.some((v) => v.streams > 1), 'streams of the killed replica reconnected');
    await waitFor(`all ${AGENTS} streams on replica ${survivor.name}`, async () => (await streamsOn(survivor!)) === AGENTS, 15_000, 50);
    const sent = views.reduce((n, v) => n + v.deltasSent, 0);
    t.diagnostic(`delivered in ${Date.now() - t0} ms: ${sent - AGENTS * PER_AGENT} resent, ${views.reduce((n, v) => n + v.streams, 0) - AGENTS} reconnects (endings ${JSON.stringify(f.endings())})`);
  });

  it('the killed replica, started again, is ready for HAProxy and takes new streams', async () => {
    assert.ok(victim && survivor, 'the failover test ran');
    await startReplica(victim);
    await waitStatus('controllers', { a: 'UP', b: 'UP' });
    // leastconn: the restarted replica holds no connection, so the new agents land on it.
    const f = createRawFleet({ members: late, address: () => agentsAddress, deltasPerAgent: LATE_PER_AGENT, batchSize: BATCH });
    running.push(f);
    f.start();
    await deliver(f, late, LATE_PER_AGENT, 'new agents after the restart');
    await waitFor(`the ${LATE_AGENTS} new streams on the restarted replica ${victim.name}`, async () => ((await streamsOn(victim!)) === LATE_AGENTS ? true : undefined), 15_000, 50);
    assert.equal(await streamsOn(survivor), AGENTS);
  });

  it('a rescan issued on the replica that survived reaches every agent on both replicas', async () => {
    assert.ok(survivor && running.length === 2, 'the tests before ran');
    const res = await survivor.admin!.rescan({ all: true });
    const byAgent = new Map(res.targets.map((t) => [t.agentId, t.commandId]));
    const members = [...fleet, ...late];
    for (const m of members) assert.ok(byAgent.get(m.id), `agent ${m.id} is a target of the rescan`);
    const got = () => {
      const seen = new Map([...running[0]!.commands(), ...running[1]!.commands()]);
      return members.filter((m) => !seen.get(m.id)?.includes(byAgent.get(m.id)!));
    };
    await waitFor('the rescan command on every agent stream', () => got().length === 0, 15_000, 50).catch((err: Error) => {
      throw new Error(`${err.message}; ${got().length} of ${members.length} agents without it`);
    });
  });

  it('revocation cuts a stream on either replica, issued through the other one', async () => {
    assert.ok(victim && survivor, 'the tests before ran');
    const [a, b] = replicas as [Replica, Replica];
    // One spare agent's stream on each replica: the other is drained in HAProxy (no new
    // connections) while it connects; which replica holds it is read from the replicas' gauges.
    const open = async (m: FleetMember, on: Replica, off: Replica) => {
      await haproxyCommand(`set server controllers/${off.name} state drain`);
      try {
        await waitStatus('controllers', { [off.name]: 'DRAIN' });
        const before = await streamsOn(on);
        const s = openRawStream(agentsAddress, m.creds);
        rawStreams.push(s);
        s.send({ msg: { case: 'hello', value: { hostname: 'spare', agentVersion: 'raw', policyVersion: 0n } } });
        await s.next('welcome');
        await waitFor(`the spare agent's stream on replica ${on.name}`, async () => ((await streamsOn(on)) === before + 1 ? true : undefined), 10_000, 50);
        return s;
      } finally {
        await haproxyCommand(`set server controllers/${off.name} state ready`);
      }
    };
    const sSurvivor = await open(spare[0]!, survivor, victim);
    const sVictim = await open(spare[1]!, victim, survivor);

    for (const [s, m, on, via] of [
      [sSurvivor, spare[0]!, survivor, survivor === a ? b : a],
      [sVictim, spare[1]!, victim, victim === a ? b : a],
    ] as const) {
      const t0 = Date.now();
      await via.admin!.revokeAgent({ agentId: m.id, reason: 'ha test' });
      const err = await Promise.race([s.ended, new Promise<undefined>((r) => setTimeout(r, 5000, undefined))]);
      assert.ok(err, `the revoked agent's stream on replica ${on.name} was cut within 5 s (revoked through ${via.name})`);
      assert.notEqual(err.code, 0, `the stream on ${on.name} ended with an error (${err.code}: ${err.details ?? err.message}), after ${Date.now() - t0} ms`);
      // And it cannot come back through the load balancer.
      const again = openRawStream(agentsAddress, m.creds);
      rawStreams.push(again);
      again.send({ msg: { case: 'hello', value: { hostname: 'spare', agentVersion: 'raw', policyVersion: 0n } } });
      const ended = await again.ended;
      assert.ok(!again.messages.some((x) => x.msg.case === 'welcome'), `a revoked agent gets no welcome (ended ${ended.code})`);
    }
  });
});
