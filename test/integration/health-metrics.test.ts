import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { startAgent } from '../../agent/agent.js';
import { enrol } from '../../agent/enrol.js';
import { parseHostPort } from '../../controller/listen-address.js';
import { enrolTestAgent, makeHome, startTestController, tempRoot, testDatabaseEnv, type TestController } from '../support/controllers.js';
import { waitFor } from '../support/processes.js';
import { openRawStream, stateCreds } from '../support/raw-agent.js';

/** One number of the Prometheus text: the sample `name{labels}` (or without labels). */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('controller health and metrics (--metrics-listen)', () => {
  const tmp = tempRoot('vigil-health-');
  let db: Awaited<ReturnType<typeof testDatabaseEnv>>;
  let ctl: TestController;
  let base: string;

  before(async () => {
    db = await testDatabaseEnv();
    const home = await makeHome(tmp.root, 'home');
    ctl = await startTestController(home, { env: db.env, tweak: (c) => ({ ...c, metricsListen: parseHostPort('127.0.0.1:0', 'test') }) });
    assert.ok(ctl.controller.metricsAddress);
    base = `http://${ctl.controller.metricsAddress}`;
  });
  after(async () => {
    await ctl?.stop();
    await db?.drop();
    tmp.remove();
  });

  it('answers /healthz and /readyz, and nothing else', async () => {
    const health = await fetch(`${base}/healthz`);
    assert.equal(health.status, 200);
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 200, await ready.clone().text());
    assert.equal((await fetch(`${base}/agents`)).status, 404);
    const post = await fetch(`${base}/metrics`, { method: 'POST', body: 'x' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
  });

  it('serves Prometheus text: runtime defaults and Vigil’s own, moving with the fleet', async () => {
    const first = await (await fetch(`${base}/metrics`)).text();
    assert.ok(first.includes('# TYPE process_cpu_user_seconds_total counter'), 'process defaults');
    assert.ok(first.includes('# TYPE nodejs_eventloop_lag_seconds gauge'), 'runtime defaults');
    assert.equal(sample(first, 'vigil_agent_streams_connected'), 0);
    assert.equal(sample(first, 'vigil_ingest_events_total'), 0);
    assert.equal(sample(first, 'vigil_enrolments_total', '{result="ok"}'), undefined);

    const agent = await enrolTestAgent(ctl, `${tmp.root}/agent`);
    const stream = openRawStream(ctl.controller.address, stateCreds(agent.dir));
    try {
      stream.send({ msg: { case: 'hello', value: { hostname: 'metrics-host', agentVersion: 'test', policyVersion: 0n } } });
      await stream.next('welcome');
      const deltas = [1, 2, 3].map((seq) => ({
        seq: BigInt(seq),
        path: Buffer.from(`/etc/metrics-${seq}`),
        kind: 1,
        state: { type: 1, size: 1n, mode: 0o100644, sha256: Buffer.alloc(32, seq) },
        detectedAt: { seconds: 1_700_000_000n, nanos: 0 },
        source: 1,
      }));
      stream.send({ msg: { case: 'deltas', value: { deltas } } });
      await stream.next('ack');
      const text = await waitFor('the metrics to show the stream and its deltas', async () => {
        const t = await (await fetch(`${base}/metrics`)).text();
        return sample(t, 'vigil_ingest_events_total') === 3 ? t : undefined;
      });
      assert.equal(sample(text, 'vigil_agent_streams_connected'), 1);
      assert.equal(sample(text, 'vigil_enrolments_total', '{result="ok"}'), 1);
      assert.ok((sample(text, 'vigil_ingest_batches_total') ?? 0) >= 1);
      assert.ok((sample(text, 'vigil_ingest_group_commit_duration_seconds_count') ?? 0) >= 1);
      assert.equal(sample(text, 'vigil_ingest_queue_deltas'), 0);
      assert.ok(!/\/etc\/metrics/.test(text), 'no path in any label');
      assert.equal(sample(text, 'vigil_alerts_pending'), 0);
      assert.equal(sample(text, 'vigil_commands_open', '{state="pending"}'), 0);
      if (db.env.DATABASE_URL) assert.ok(sample(text, 'vigil_postgres_pool_connections', '{state="idle"}') !== undefined);
    } finally {
      stream.close();
    }
    // A rescan of an agent not connected any more: one command pending (within the gauges' 5 s).
    await ctl.admin.rescan({ agentId: agent.id, all: false, fullHash: false });
    const queued = await waitFor('the pending command in the metrics', async () => {
      const t = await (await fetch(`${base}/metrics`)).text();
      return sample(t, 'vigil_commands_open', '{state="pending"}') === 1 ? t : undefined;
    }, 15_000, 500);
    assert.equal(sample(queued, 'vigil_commands_open', '{state="delivered"}'), 0);
    // A refused enrolment (a one-use token used twice) is counted by the code it was refused with.
    const { joinString } = await ctl.admin.createToken({ ttlSeconds: 600, uses: 1 });
    await enrol({ joinString, stateDir: `${tmp.root}/second`, logger: pino({ level: 'silent' }) });
    await assert.rejects(enrol({ joinString, stateDir: `${tmp.root}/third`, logger: pino({ level: 'silent' }) }));
    const text = await (await fetch(`${base}/metrics`)).text();
    assert.equal(sample(text, 'vigil_enrolments_total', '{result="ok"}'), 2);
    const refused = text.split('\n').filter((l) => l.startsWith('vigil_enrolments_total{') && !l.includes('result="ok"'));
    assert.equal(refused.length, 1, refused.join('\n'));
    assert.equal(Number(refused[0]!.split(' ').pop()), 1);
    // A revocation through this replica is counted.
    assert.equal(sample(text, 'vigil_agent_revocations_total'), 0);
    await ctl.admin.revokeAgent({ agentId: agent.id, reason: 'test' });
    assert.equal(sample(await (await fetch(`${base}/metrics`)).text(), 'vigil_agent_revocations_total'), 1);
  });

});

describe('agent health and metrics (--metrics-listen)', { timeout: 60_000 }, () => {
  const tmp = tempRoot('vigil-agent-health-');
  let db: Awaited<ReturnType<typeof testDatabaseEnv>>;
  let ctl: TestController;
  let ctlStopped = false;

  before(async () => {
    db = await testDatabaseEnv();
    // Agent certificates live 8 s here: the agent renews one during the test.
    ctl = await startTestController(await makeHome(tmp.root, 'home'), { env: db.env, tweak: (c) => ({ ...c, agentCertLifetimeMs: 8_000, metricsListen: parseHostPort('127.0.0.1:0', 'test') }) });
  });
  after(async () => {
    if (!ctlStopped) await ctl?.stop();
    await db?.drop();
    tmp.remove();
  });

  it('shows the stream, the queue and the certificate, and stops serving when the agent stops', async () => {
    const { dir } = await enrolTestAgent(ctl, `${tmp.root}/agent`);
    const agent = await startAgent({ stateDir: dir, logger: pino({ level: 'silent' }), metricsListen: { host: '127.0.0.1', port: 0 } });
    const base = `http://${agent.metricsAddress}`;
    try {
      assert.equal((await fetch(`${base}/healthz`)).status, 200);
      assert.equal((await fetch(`${base}/readyz`)).status, 200);
      const text = await waitFor('the agent connected, in its metrics', async () => {
        const t = await (await fetch(`${base}/metrics`)).text();
        return sample(t, 'vigil_agent_stream_state', '{state="connected"}') === 1 ? t : undefined;
      });
      assert.equal(sample(text, 'vigil_agent_stream_state', '{state="waiting"}'), 0);
      assert.equal(sample(text, 'vigil_agent_queue_deltas'), 0);
      assert.equal(sample(text, 'vigil_agent_oldest_unacked_age_seconds'), 0);
      assert.equal(sample(text, 'vigil_agent_resync_needed'), 0);
      assert.ok((sample(text, 'vigil_agent_queue_limit_bytes') ?? 0) > 0);
      const notAfter = Date.parse(new X509Certificate(readFileSync(`${dir}/cert.pem`)).validTo) / 1000;
      assert.equal(sample(text, 'vigil_agent_certificate_expiry_timestamp_seconds'), notAfter);
      assert.ok(text.includes('# TYPE process_resident_memory_bytes gauge'));
      // The certificate is renewed over the stream: the controller counts it, the agent's gauge moves on.
      await waitFor('a renewal counted by the controller', async () => {
        const t = await (await fetch(`http://${ctl.controller.metricsAddress}/metrics`)).text();
        return (sample(t, 'vigil_certificate_renewals_total') ?? 0) >= 1 ? t : undefined;
      }, 20_000, 200);
      await waitFor('the agent showing its renewed certificate', async () => {
        const t = await (await fetch(`${base}/metrics`)).text();
        return (sample(t, 'vigil_agent_certificate_expiry_timestamp_seconds') ?? 0) > notAfter ? t : undefined;
      }, 20_000, 200);
      // The controller goes away: the agent says it is waiting to reconnect.
      ctlStopped = true;
      await ctl.stop();
      await waitFor('the agent waiting to reconnect, in its metrics', async () => {
        const t = await (await fetch(`${base}/metrics`)).text();
        const s = (state: string) => sample(t, 'vigil_agent_stream_state', `{state="${state}"}`);
        return s('connected') === 0 && (s('waiting') === 1 || s('connecting') === 1) ? t : undefined;
      });
    } finally {
      await agent.stop();
    }
    await assert.rejects(fetch(`${base}/healthz`), 'nothing listens once the agent stopped');
  });
});
