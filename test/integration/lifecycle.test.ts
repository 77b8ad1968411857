/**
 * Certificate lifecycle against real controllers (in process, real TLS listeners, Postgres when
 * DATABASE_URL is set): rotation over the live stream, expiry, revocation on every replica, one
 * live stream per identity, and identity taken from the certificate only.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { startAgent } from '../../agent/agent.js';
import { AgentError } from '../../agent/errors.js';
import type { VigilHome } from '../../controller/home.js';
import { waitFor } from '../support/processes.js';
import { createAgentStore, createPgSql } from '../../controller/store/index.js';
import { createCsr, generateKeyPair } from '../../pki/index.js';
import { captureLogger, enrolTestAgent, makeHome, startTestController, tempRoot, testDatabaseEnv, type TestController } from '../support/controllers.js';
import { openRawStream, stateCreds } from '../support/raw-agent.js';

const silent = pino({ level: 'silent' });
const serialOf = (dir: string) => new X509Certificate(readFileSync(join(dir, 'cert.pem'))).serialNumber.toLowerCase();
const PERMISSION_DENIED = 7;

describe('certificate lifecycle', { timeout: 120_000 }, () => {
  const { root, remove } = tempRoot('vigil-life-');
  let home: VigilHome;
  let a: TestController;
  let b: TestController | undefined;
  let drop: () => Promise<void>;
  let dbUrl: string | undefined;
  let offsetMs = 0;
  const capture = captureLogger();
  let n = 0;
  const enrolNew = (ctl: TestController = a) => enrolTestAgent(ctl, join(root, `agent-${n++}`));

  before(async () => {
    home = await makeHome(root, 'home');
    const db = await testDatabaseEnv();
    drop = db.drop;
    dbUrl = db.env.DATABASE_URL;
    // Agent certificates live 8 seconds here, so that rotation happens during the test.
    const tweak = (c: TestController['config']) => ({ ...c, agentCertLifetimeMs: 8_000 });
    a = await startTestController(home, { env: db.env, clock: () => new Date(Date.now() + offsetMs), logger: capture.logger, tweak });
    // A second replica on the same Postgres; PGlite is one process, so one replica there.
    if (db.env.DATABASE_URL) b = await startTestController(home, { env: db.env, tweak });
  });

  after(async () => {
    await b?.stop();
    await a?.stop();
    await drop?.();
    remove();
  });

  it('renews over the live stream with a fresh key at 70-90 % of the lifetime, then reconnects with it', async () => {
    const { dir, id } = await enrolNew();
    const firstSerial = serialOf(dir);
    const firstKey = readFileSync(join(dir, 'key.pem'), 'utf8');
    const firstCert = new X509Certificate(readFileSync(join(dir, 'cert.pem')));
    const agent = await startAgent({ stateDir: dir, logger: silent });
    try {
      await waitFor('renewed certificate', () => serialOf(dir) !== firstSerial, 15_000, 50);
      const renewed = new X509Certificate(readFileSync(join(dir, 'cert.pem')));
      const life = Date.parse(firstCert.validTo) - Date.parse(firstCert.validFrom);
      const renewedAt = Date.parse(renewed.validFrom) + Math.min(5 * 60_000, Math.floor(8_000 / 10));
      const at = (renewedAt - Date.parse(firstCert.validFrom)) / life;
      assert.ok(at > 0.6 && at < 1.0, `renewed at ${at.toFixed(2)} of the lifetime`);
      assert.notEqual(readFileSync(join(dir, 'key.pem'), 'utf8'), firstKey, 'a fresh key');
      assert.equal(statSync(join(dir, 'key.pem')).mode & 0o777, 0o600);
      assert.ok(renewed.verify(new X509Certificate(readFileSync(home.caCert)).publicKey));
      assert.equal(renewed.subjectAltName, `URI:spiffe://vigil.test/agent/${id}`);
      // Reconnected with the new certificate.
      await waitFor('a stream with the new certificate', () =>
        capture.lines().some((l) => l.msg === 'certificate renewed' && l.agentId === id) &&
        (capture.lines().filter((l) => l.msg === 'agent connected' && l.agentId === id).length >= 2),
      );
      const listed = (await a.admin.listAgents({})).agents.find((x) => x.id === id)!;
      assert.equal(listed.status, 'connected');
    } finally {
      await agent.stop();
    }
  });

  it('an expired certificate cannot be used: the agent says to enrol again, and agents ls shows it', async () => {
    const { dir, id } = await enrolNew();
    await assert.rejects(
      startAgent({ stateDir: dir, logger: silent, clock: () => new Date(Date.now() + 3_600_000) }),
      (e: unknown) => e instanceof AgentError && e.code === 'certificate_expired' && /enrol again/.test(e.message),
    );
    offsetMs = 3_600_000;
    try {
      const listed = (await a.admin.listAgents({})).agents.find((x) => x.id === id)!;
      assert.equal(listed.status, 'certificate_expired');
    } finally {
      offsetMs = 0;
    }
  });

  it('revocation cuts the live stream within a second on every replica, and refuses it afterwards', async () => {
    const { dir, id } = await enrolNew();
    const agent = await startAgent({ stateDir: dir, logger: silent });
    await waitFor('agent connected', async () => (await a.admin.listAgents({})).agents.find((x) => x.id === id)?.connected);
    const other = b ?? a; // revoke through the other replica when there is one
    const stopped = agent.done.then(
      () => null,
      (e: unknown) => e,
    );
    const t0 = Date.now();
    await other.admin.revokeAgent({ agentId: id, reason: 'laptop stolen: 100% sure' });
    const err = await Promise.race([stopped, new Promise((r) => setTimeout(() => r('timeout'), 1_000))]);
    const elapsed = Date.now() - t0;
    assert.ok(err instanceof AgentError && err.code === 'revoked', `agent stopped with ${String(err)} after ${elapsed} ms`);
    assert.match(err.message, /revoked: laptop stolen: 100% sure/, 'the reason as the operator wrote it, not percent-encoded');
    for (const ctl of [a, b].filter((x): x is TestController => !!x)) {
      const s = openRawStream(ctl.controller.address, stateCreds(dir));
      const refused = await s.ended;
      assert.equal(refused.code, PERMISSION_DENIED, 'a new connection is refused');
      s.close();
    }
    const listed = (await a.admin.listAgents({})).agents.find((x) => x.id === id)!;
    assert.equal(listed.status, 'revoked');
    const audit = (await a.admin.listAudit({})).entries.find((e) => e.action === 'agents.revoke' && e.target === id);
    assert.equal(audit?.actor, 'spiffe://vigil.test/admin/admin');
    await agent.stop();
  });

  it('refuses a renewal on a stream that outlived its revocation', async (t) => {
    if (!dbUrl) return t.skip('needs a Postgres server to revoke behind the controllers\' backs');
    const { dir, id } = await enrolNew();
    const s = openRawStream(a.controller.address, stateCreds(dir));
    await s.next('welcome');
    // Revoked in the database only, as if this replica had missed the notification.
    const sql = createPgSql(dbUrl);
    try {
      assert.ok(await createAgentStore(sql, () => new Date()).revoke(id, 'behind the back'));
    } finally {
      await sql.close();
    }
    const keys = await generateKeyPair();
    s.send({ msg: { case: 'renew', value: { csrPem: createCsr(keys.privateKeyPem, keys.publicKeyPem, 'h') } } });
    const err = await s.ended;
    assert.equal(err.code, PERMISSION_DENIED);
    assert.ok(!s.messages.some((m) => m.msg.case === 'renewed'), 'no certificate was issued');
    s.close();
  });

  it('reports a second live stream of one identity as possible credential theft', async () => {
    const { dir, id } = await enrolNew();
    const first = openRawStream(a.controller.address, stateCreds(dir));
    await first.next('welcome');
    const second = openRawStream((b ?? a).controller.address, stateCreds(dir));
    await second.next('welcome');
    const cut = await first.ended;
    assert.notEqual(cut.code, 0, 'the older stream is closed');
    const entry = await waitFor('audit entry', async () => (await a.admin.listAudit({})).entries.find((e) => e.action === 'security.duplicate_stream' && e.target === id));
    assert.equal(entry.actor, 'controller');
    second.close();
  });

  it("stores deltas under the certificate's agent, whatever the stream says", async () => {
    const alice = await enrolNew();
    const bob = await enrolNew();
    const s = openRawStream(a.controller.address, stateCreds(alice.dir));
    await s.next('welcome');
    s.send({ msg: { case: 'hello', value: { hostname: `bob's host ${bob.id}` } } });
    s.send({
      msg: {
        case: 'deltas',
        value: { deltas: [{ seq: 1n, path: Buffer.from('/etc/passwd'), kind: 1, state: { type: 1, sha256: Buffer.alloc(32, 1) }, source: 1 }] },
      },
    });
    const ack = await s.next('ack');
    assert.equal(ack.msg.case === 'ack' && ack.msg.value.upToSeq, 1n);
    s.close();
    const aliceEvents = (await a.admin.listEvents({ agentId: alice.id })).events;
    const bobEvents = (await a.admin.listEvents({ agentId: bob.id })).events;
    assert.equal(aliceEvents.length, 1);
    assert.equal(bobEvents.length, 0);
  });
});
