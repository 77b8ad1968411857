import { DEFAULT_LIMITS, defineRule } from '../../core/policy-schema.js';
/**
 * Bad input at the enrolment and mutual-TLS boundaries, against a real controller (in process, real
 * listeners on port 0, real certificates): every refusal is clear and changes nothing.
 */
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createConnectTransport, createGrpcTransport } from '@connectrpc/connect-node';
import { pino } from 'pino';
import { AgentError } from '../../agent/errors.js';
import { enrol } from '../../agent/enrol.js';
import { createAgentClient } from '../../agent/transport/agent-client.js';
import { compileControllerConfig } from '../../controller/config.js';
import { startController, type RunningController } from '../../controller/controller.js';
import type { VigilHome } from '../../controller/home.js';
import { makeHome } from '../support/controllers.js';
import { createAdminClient, type AdminClient } from '../../controller/vigilctl/admin-client.js';
import { createCsr, formatJoinString, formatToken, generateKeyPair, generateToken, parseJoinString, PkiError } from '../../pki/index.js';
import { AdminService } from '../../proto/gen/vigil/v1/admin_pb.js';
import { AgentService, ConnectRequestSchema } from '../../proto/gen/vigil/v1/agent_pb.js';
import { policyToPb } from '../../proto/convert.js';
import { createServerDatabase } from '../support/databases.js';

const logger = pino({ level: 'silent' });

describe('enrolment and transport refuse bad input', { timeout: 120_000 }, () => {
  const root = mkdtempSync(join(tmpdir(), 'vigil-sec-'));
  let home: VigilHome;
  let foreign: VigilHome;
  let now = Date.now();
  let controller: RunningController;
  let admin: AdminClient;
  let dropDb: (() => Promise<void>) | undefined;
  let n = 0;
  const stateDir = () => join(root, `agent-${n++}`);
  const newJoin = async (ttlSeconds = 600, uses = 1) => (await admin.createToken({ ttlSeconds, uses })).joinString;
  const agentCount = async () => (await admin.listAgents({})).agents.length;

  before(async () => {
    home = await makeHome(root, 'home');
    foreign = await makeHome(root, 'foreign');
    const env: NodeJS.ProcessEnv = {};
    if (process.env.DATABASE_URL) {
      const db = await createServerDatabase(process.env.DATABASE_URL);
      env.DATABASE_URL = db.url;
      dropDb = db.drop;
    }
    const config = compileControllerConfig({ home: home.dir, listen: '127.0.0.1:0', enrolListen: '127.0.0.1:0', env });
    controller = await startController(config, { logger, clock: () => new Date(now) });
    admin = (await createAdminClient(home, controller.address)).client;
  });

  after(async () => {
    await controller?.stop();
    await dropDb?.();
    rmSync(root, { recursive: true, force: true });
  });

  it('enrols with a valid token and refuses to enrol the same state directory twice', async () => {
    const dir = stateDir();
    const id = await enrol({ joinString: await newJoin(), stateDir: dir, logger });
    assert.match(id.agentId, /^[0-9a-f-]{36}$/);
    assert.equal(id.controller, controller.address);
    await assert.rejects(enrol({ joinString: await newJoin(), stateDir: dir, logger }), (e: unknown) => e instanceof AgentError && e.code === 'already_enrolled');
  });

  it('enrols over the Connect protocol too (connect-node answers what is not gRPC on the enrolment listener)', async () => {
    const join = parseJoinString(await newJoin());
    const keys = await generateKeyPair();
    const client = createClient(AgentService, createConnectTransport({ baseUrl: `https://${controller.enrolAddress}`, httpVersion: '2', nodeOptions: { ca: readFileSync(home.caCert, 'utf8') } }));
    const res = await client.enroll({ token: formatToken(join.token), csrPem: createCsr(keys.privateKeyPem, keys.publicKeyPem, 'ignored'), hostname: 'over-connect' });
    assert.match(res.agentId, /^[0-9a-f-]{36}$/);
    assert.equal(res.connectAddress, controller.address);
    assert.ok((await admin.listAgents({})).agents.some((a) => a.id === res.agentId && a.hostname === 'over-connect'));
    await assert.rejects(client.enroll({ token: formatToken(join.token), csrPem: createCsr(keys.privateKeyPem, keys.publicKeyPem, 'x'), hostname: 'again' }), (e: unknown) => e instanceof ConnectError && e.code === Code.Unauthenticated && /no uses left/.test(e.rawMessage));
  });

  it('refuses an unknown token, and says no more than "not valid"', async () => {
    const before = await agentCount();
    const join = parseJoinString(await newJoin());
    const forged = formatJoinString({ ...join, token: generateToken() });
    await assert.rejects(enrol({ joinString: forged, stateDir: stateDir(), logger }), (e: unknown) => e instanceof AgentError && e.code === 'enrol_refused' && /token is not valid/.test(e.message));
    const guessed = formatJoinString({ ...join, token: { id: join.token.id, secret: generateToken().secret } });
    await assert.rejects(enrol({ joinString: guessed, stateDir: stateDir(), logger }), /token is not valid/);
    assert.equal(await agentCount(), before);
    // The guess did not use the real token up.
    await enrol({ joinString: formatJoinString(join), stateDir: stateDir(), logger });
  });

  it('refuses an expired token', async () => {
    const joinString = await newJoin(60);
    now += 61_000;
    const before = await agentCount();
    await assert.rejects(enrol({ joinString, stateDir: stateDir(), logger }), /token has expired/);
    assert.equal(await agentCount(), before);
  });

  it('refuses a revoked token', async () => {
    const joinString = await newJoin();
    await admin.revokeToken({ id: parseJoinString(joinString).token.id });
    await assert.rejects(enrol({ joinString, stateDir: stateDir(), logger }), /token was revoked/);
    const listed = (await admin.listTokens({})).tokens.find((t) => t.id === parseJoinString(joinString).token.id);
    assert.ok(listed?.revokedAt);
    assert.ok(!JSON.stringify(listed, (_k, v) => (typeof v === 'bigint' ? String(v) : v)).includes(parseJoinString(joinString).token.secret));
  });

  it('lets exactly N of many racing agents enrol on an N-use token', async () => {
    const joinString = await newJoin(600, 3);
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => enrol({ joinString, stateDir: stateDir(), logger })));
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 3);
    for (const r of results) if (r.status === 'rejected') assert.match(String(r.reason), /no uses left/);
  });

  it('stops before sending the token when the CA pin does not match', async () => {
    const joinString = await newJoin();
    const join = parseJoinString(joinString);
    const wrongPin = formatJoinString({ ...join, pins: [`sha256:${'0'.repeat(64)}`] });
    await assert.rejects(enrol({ joinString: wrongPin, stateDir: stateDir(), logger }), (e: unknown) => e instanceof AgentError && e.code === 'pin_mismatch');
    const token = (await admin.listTokens({})).tokens.find((t) => t.id === join.token.id)!;
    assert.equal(token.uses, 0, 'the token never reached the controller');
    await enrol({ joinString, stateDir: stateDir(), logger });
  });

  it('refuses a join string without a pin or with a malformed token, before any contact', async () => {
    const join = parseJoinString(await newJoin());
    await assert.rejects(enrol({ joinString: `vigil://${join.address}?token=${join.token.id}.${join.token.secret}`, stateDir: stateDir(), logger }), (e: unknown) => e instanceof PkiError && e.code === 'invalid_join_string');
    await assert.rejects(enrol({ joinString: `vigil://${join.address}?token=abc&pin=${join.pins[0]}`, stateDir: stateDir(), logger }), (e: unknown) => e instanceof PkiError && e.code === 'invalid_token');
  });

  it('refuses clients without a certificate, or with one from another CA, on the mutual-TLS listener', async () => {
    const ca = readFileSync(home.caCert, 'utf8');
    const bare = createClient(AdminService, createGrpcTransport({ baseUrl: `https://${controller.address}`, nodeOptions: { ca } }));
    await assert.rejects(bare.listAgents({}), (e: unknown) => e instanceof ConnectError);
    const foreignOp = createClient(
      AdminService,
      createGrpcTransport({
        baseUrl: `https://${controller.address}`,
        nodeOptions: { ca, cert: readFileSync(foreign.operatorCert, 'utf8'), key: readFileSync(foreign.operatorKey, 'utf8') },
      }),
    );
    await assert.rejects(foreignOp.listAgents({}), (e: unknown) => e instanceof ConnectError);
    // An agent stream with a foreign certificate is cut before anything is read.
    const client = createAgentClient({ address: controller.address, caPem: ca, certPem: readFileSync(foreign.operatorCert, 'utf8'), keyPem: readFileSync(foreign.operatorKey, 'utf8') });
    const call = client.connect();
    call.write(create(ConnectRequestSchema, { msg: { case: 'hello', value: { hostname: 'mallory' } } }));
    const err = await new Promise<Error>((resolve) => call.once('error', resolve));
    assert.ok(err);
    client.close();
  });

  it('refuses an operator certificate on the agent stream, and an agent certificate on the admin API', async () => {
    const ca = readFileSync(home.caCert, 'utf8');
    const op = createAgentClient({ address: controller.address, caPem: ca, certPem: readFileSync(home.operatorCert, 'utf8'), keyPem: readFileSync(home.operatorKey, 'utf8') });
    const call = op.connect();
    const err = await new Promise<Error & { code?: number }>((resolve) => call.once('error', resolve));
    assert.equal(err.code, 16 /* UNAUTHENTICATED */);
    op.close();
    const dir = stateDir();
    await enrol({ joinString: await newJoin(), stateDir: dir, logger });
    const asAgent = createClient(
      AdminService,
      createGrpcTransport({
        baseUrl: `https://${controller.address}`,
        nodeOptions: { ca, cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8') },
      }),
    );
    await assert.rejects(asAgent.listAgents({}), (e: unknown) => e instanceof ConnectError && e.code === Code.Unauthenticated);
  });

  it('speaks only HTTP/2 (ALPN h2): an HTTP/1.1-only client gets no session', async () => {
    const [host, port] = [controller.address.split(':')[0]!, Number(controller.address.split(':')[1])];
    const protocol = await new Promise<string | false | null>((resolve) => {
      const s = tlsConnect({ host, port, ALPNProtocols: ['http/1.1'], ca: readFileSync(home.caCert, 'utf8'), cert: readFileSync(home.operatorCert, 'utf8'), key: readFileSync(home.operatorKey, 'utf8') });
      s.once('secureConnect', () => {
        const p = s.alpnProtocol;
        s.destroy();
        resolve(p);
      });
      s.once('error', () => resolve(null));
    });
    assert.notEqual(protocol, 'http/1.1');
  });

  it('refuses TLS 1.2', async () => {
    const [host, port] = [controller.enrolAddress.split(':')[0]!, Number(controller.enrolAddress.split(':')[1])];
    const err = await new Promise<Error | null>((resolve) => {
      const s = tlsConnect({ host, port, maxVersion: 'TLSv1.2', rejectUnauthorized: false, ALPNProtocols: ['h2'] });
      s.once('secureConnect', () => {
        s.destroy();
        resolve(null);
      });
      s.once('error', resolve);
    });
    assert.ok(err, 'a TLS 1.2 handshake must fail');
  });

  it('refuses a malformed policy with an error that names the field', async () => {
    const bad = policyToPb({ version: 0, limits: DEFAULT_LIMITS, rules: [defineRule({ name: 'etc', paths: ['relative/path'], exclude: [], alert: false, selector: {} })] });
    await assert.rejects(admin.applyPolicy({ policy: bad }), (e: unknown) => e instanceof ConnectError && e.code === Code.InvalidArgument && /rules\[0\]\.paths\[0\]/.test(e.rawMessage));
    assert.equal((await admin.getPolicy({})).policy, undefined, 'nothing was stored');
  });
});
