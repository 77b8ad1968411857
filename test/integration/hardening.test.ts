import { DEFAULT_LIMITS, defineRule } from '../../core/policy-schema.js';
/**
 * Operators' roles, enrolment hardening (rate limit, CSR checks on the wire, a controller with
 * another CA in the middle) and the controller's start-up refusals.
 */
import assert from 'node:assert/strict';
import { chmodSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { pino } from 'pino';
import { enrol } from '../../agent/enrol.js';
import { AgentError } from '../../agent/errors.js';
import { createAgentClient } from '../../agent/transport/agent-client.js';
import { compileControllerConfig } from '../../controller/config.js';
import { startController } from '../../controller/controller.js';
import { ControllerError } from '../../controller/errors.js';
import type { VigilHome } from '../../controller/home.js';
import { createCsr, formatJoinString, generateKeyPair, generateToken, parseJoinString, PkiError } from '../../pki/index.js';
import { AdminService } from '../../proto/gen/vigil/v1/admin_pb.js';
import { openRawStream, stateCreds } from '../support/raw-agent.js';
import { policyToPb } from '../../proto/convert.js';
import { captureLogger, makeHome, startTestController, tempRoot, testDatabaseEnv, type TestController } from '../support/controllers.js';

const silent = pino({ level: 'silent' });

describe('operators, enrolment hardening, start-up refusals', { timeout: 120_000 }, () => {
  const { root, remove } = tempRoot('vigil-hard-');
  let home: VigilHome;
  let ctl: TestController;
  let drop: () => Promise<void>;
  let n = 0;
  const stateDir = () => join(root, `agent-${n++}`);

  before(async () => {
    home = await makeHome(root, 'home');
    const db = await testDatabaseEnv();
    drop = db.drop;
    ctl = await startTestController(home, { env: db.env, tweak: (c) => ({ ...c, enrolFailures: { max: 3, windowMs: 60_000 } }) });
  });

  after(async () => {
    await ctl?.stop();
    await drop?.();
    remove();
  });

  it('a viewer reads everything and changes nothing; every change is audited with who, what, when', async () => {
    const keys = await generateKeyPair();
    const added = await ctl.admin.addAdmin({ name: 'auditor', role: 'viewer', csrPem: createCsr(keys.privateKeyPem, keys.publicKeyPem, 'ignored') });
    assert.equal(added.spiffeId, 'spiffe://vigil.test/admin/auditor');
    const viewer = createClient(
      AdminService,
      createGrpcTransport({ baseUrl: `https://${ctl.controller.address}`, nodeOptions: { ca: added.caPem, cert: added.certificatePem, key: keys.privateKeyPem } }),
    );
    await viewer.listAgents({});
    await viewer.listEvents({});
    await viewer.listAudit({});
    const denied = (e: unknown) => e instanceof ConnectError && e.code === Code.PermissionDenied && /viewer/.test(e.rawMessage);
    await assert.rejects(viewer.revokeAgent({ agentId: 'x' }), denied);
    await assert.rejects(viewer.createToken({}), denied);
    await assert.rejects(viewer.applyPolicy({ policy: { rules: [] } }), denied);
    await assert.rejects(viewer.rescan({ all: true }), denied);
    await assert.rejects(viewer.addAdmin({ name: 'me2', role: 'admin', csrPem: createCsr(keys.privateKeyPem, keys.publicKeyPem, 'x') }), denied);
    const audit = (await ctl.admin.listAudit({})).entries;
    const add = audit.find((e) => e.action === 'admins.add');
    assert.equal(add?.actor, 'spiffe://vigil.test/admin/admin');
    assert.equal(add?.target, 'spiffe://vigil.test/admin/auditor');
    assert.ok(add?.at);
    assert.ok(!audit.some((e) => e.actor.endsWith('/auditor')), 'the viewer changed nothing');
  });

  it('a revoked operator is refused on every call from then on', async () => {
    const keys = await generateKeyPair();
    const added = await ctl.admin.addAdmin({ name: 'leaver', role: 'admin', csrPem: createCsr(keys.privateKeyPem, keys.publicKeyPem, 'x') });
    const leaver = createClient(
      AdminService,
      createGrpcTransport({ baseUrl: `https://${ctl.controller.address}`, nodeOptions: { ca: added.caPem, cert: added.certificatePem, key: keys.privateKeyPem } }),
    );
    await leaver.listTokens({});
    await ctl.admin.revokeAdmin({ name: 'leaver', reason: 'left the company' });
    // Same client, same HTTP/2 connection: still refused, the check is per call.
    await assert.rejects(leaver.listTokens({}), (e: unknown) => e instanceof ConnectError && e.code === Code.PermissionDenied && /revoked/.test(e.rawMessage));
    await assert.rejects(ctl.admin.revokeAdmin({ name: 'admin' }), (e: unknown) => e instanceof ConnectError && /cannot revoke itself/.test(e.rawMessage));
    // The name can be given a new credential; only the revoked certificate stays refused.
    const again = await generateKeyPair();
    const readded = await ctl.admin.addAdmin({ name: 'leaver', role: 'viewer', csrPem: createCsr(again.privateKeyPem, again.publicKeyPem, 'x') });
    const back = createClient(
      AdminService,
      createGrpcTransport({ baseUrl: `https://${ctl.controller.address}`, nodeOptions: { ca: readded.caPem, cert: readded.certificatePem, key: again.privateKeyPem } }),
    );
    await back.listTokens({});
    await assert.rejects(leaver.listTokens({}), /revoked/);
  });

  it('labels from the token select which policy rules an agent gets', async () => {
    const { joinString } = await ctl.admin.createToken({ ttlSeconds: 600, uses: 1, labels: { env: 'prod', role: 'web' } });
    const dir = stateDir();
    const id = await enrol({ joinString, stateDir: dir, logger: silent });
    const agent = (await ctl.admin.listAgents({})).agents.find((a) => a.id === id.agentId)!;
    assert.deepEqual({ ...agent.labels }, { env: 'prod', role: 'web' });
    await ctl.admin.applyPolicy({
      policy: policyToPb({
        version: 0,
        limits: DEFAULT_LIMITS,
        rules: [
          defineRule({ name: 'everywhere', paths: ['/etc'], exclude: [], alert: true, selector: {} }),
          defineRule({ name: 'prod-web', paths: ['/srv/www'], exclude: [], alert: true, selector: { env: 'prod', role: 'web' } }),
          defineRule({ name: 'dev', paths: ['/home'], exclude: [], alert: false, selector: { env: 'dev' } }),
        ],
      }),
    });
    const s = openRawStream(ctl.controller.address, stateCreds(dir));
    const pushed = await s.next('policy');
    s.close();
    assert.deepEqual(pushed.msg.case === 'policy' && pushed.msg.value.rules.map((r) => r.name), ['everywhere', 'prod-web']);
    await assert.rejects(ctl.admin.createToken({ labels: { 'bad key!': 'x' } }), (e: unknown) => e instanceof ConnectError && /label "bad key!"/.test(e.rawMessage));
  });

  it('refuses garbage, weak and wrongly signed CSRs on the wire without using the token up', async () => {
    const join = parseJoinString((await ctl.admin.createToken({ ttlSeconds: 600, uses: 1 })).joinString);
    const client = createAgentClient({ address: join.address, caPem: readFileSync(home.caCert, 'utf8') });
    const token = `${join.token.id}.${join.token.secret}`;
    const weak = await generateKeyPair(1024);
    const a = await generateKeyPair();
    const b = await generateKeyPair();
    const csrs = ['garbage', 'x'.repeat(60_000), createCsr(weak.privateKeyPem, weak.publicKeyPem, 'h'), createCsr(b.privateKeyPem, a.publicKeyPem, 'h')];
    for (const csrPem of csrs) {
      await assert.rejects(client.enroll({ token, csrPem, hostname: 'h' }), (e: { code?: number }) => e.code === 3 /* INVALID_ARGUMENT */ || e.code === 8 /* RESOURCE_EXHAUSTED */);
    }
    client.close();
    const t = (await ctl.admin.listTokens({})).tokens.find((x) => x.id === join.token.id)!;
    assert.equal(t.uses, 0);
  });

  it('rate-limits failed enrolments per source address', async () => {
    // The CSR test above already failed from this address; a few guesses more reach the limit.
    const join = parseJoinString((await ctl.admin.createToken({ ttlSeconds: 600, uses: 5 })).joinString);
    let limited: unknown;
    for (let i = 0; i < 5 && !limited; i++) {
      try {
        await enrol({ joinString: formatJoinString({ ...join, token: { id: join.token.id, secret: generateToken().secret } }), stateDir: stateDir(), logger: silent });
      } catch (e) {
        if (/too many failed enrolment attempts/.test(String(e))) limited = e;
      }
    }
    assert.ok(limited, 'guessing is cut off');
    // While limited, another wrong token (or garbage) is refused at once as rate limited...
    await assert.rejects(
      enrol({ joinString: formatJoinString({ ...join, token: { id: join.token.id, secret: generateToken().secret } }), stateDir: stateDir(), logger: silent }),
      /too many failed enrolment attempts/,
    );
    await assert.rejects(
      enrol({ joinString: formatJoinString({ ...join, token: { id: 'nosuchtokn', secret: generateToken().secret } }), stateDir: stateDir(), logger: silent }),
      /too many failed enrolment attempts/,
    );
    // ...but a host behind the same address with the right token still enrols.
    const id = await enrol({ joinString: formatJoinString(join), stateDir: stateDir(), logger: silent });
    assert.match(id.agentId, /^[0-9a-f-]{36}$/);
  });

  it('stops before sending the token to a controller with another CA in the middle', async () => {
    const foreignHome = await makeHome(root, 'mallory');
    const log = captureLogger();
    const mallory = await startTestController(foreignHome, { logger: log.logger });
    try {
      // The real token and pin, but the address is Mallory's.
      const real = parseJoinString((await ctl.admin.createToken({ ttlSeconds: 600, uses: 1 })).joinString);
      const hijacked = formatJoinString({ ...real, address: mallory.controller.enrolAddress });
      await assert.rejects(enrol({ joinString: hijacked, stateDir: stateDir(), logger: silent }), (e: unknown) => e instanceof AgentError && e.code === 'pin_mismatch');
      assert.ok(!log.lines().some((l) => l.component === 'enroll'), 'Mallory never saw an Enroll call');
    } finally {
      await mallory.stop();
    }
  });

  it('refuses to start with NODE_TLS_REJECT_UNAUTHORIZED=0 or with a group-readable key', async () => {
    assert.throws(
      () => compileControllerConfig({ home: home.dir, env: { NODE_TLS_REJECT_UNAUTHORIZED: '0' } }),
      (e: unknown) => e instanceof ControllerError && /NODE_TLS_REJECT_UNAUTHORIZED/.test(e.message),
    );
    const other = await makeHome(root, 'loose');
    chmodSync(other.serverKey, 0o640);
    const config = compileControllerConfig({ home: other.dir, listen: '127.0.0.1:0', enrolListen: '127.0.0.1:0', env: {} });
    await assert.rejects(startController(config, { logger: silent, clock: () => new Date() }), (e: unknown) => e instanceof PkiError && e.code === 'insecure_key_file' && /chmod 600/.test(e.message));
  });

  it('keeps the CA key encrypted with VIGIL_CA_PASSPHRASE', async () => {
    const locked = await makeHome(root, 'locked', { caPassphrase: 'correct horse battery staple' });
    assert.match(readFileSync(locked.caKey, 'utf8'), /BEGIN ENCRYPTED PRIVATE KEY/);
    const start = (env: NodeJS.ProcessEnv) =>
      startController(compileControllerConfig({ home: locked.dir, listen: '127.0.0.1:0', enrolListen: '127.0.0.1:0', env }), { logger: silent, clock: () => new Date() });
    await assert.rejects(start({}), (e: unknown) => e instanceof PkiError && e.code === 'key_encrypted' && /VIGIL_CA_PASSPHRASE/.test(e.message));
    await assert.rejects(start({ VIGIL_CA_PASSPHRASE: 'wrong' }), (e: unknown) => e instanceof PkiError && /wrong passphrase/.test(e.message));
    const running = await start({ VIGIL_CA_PASSPHRASE: 'correct horse battery staple' });
    await running.stop();
  });
});
