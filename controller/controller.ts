import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createContextValues } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import type { Logger } from 'pino';
import { AdminService } from '../proto/gen/vigil/v1/admin_pb.js';
import { AgentService } from '../proto/gen/vigil/v1/agent_pb.js';
import { MAX_AGENT_MESSAGE_BYTES } from '../proto/wire-limits.js';
import { createCertificateAuthority, readSecretFile, spkiFingerprint } from '../pki/index.js';
import { createAgentHub } from './agent-hub.js';
import { createAlertDispatcher } from './alerts/alert-dispatcher.js';
import { createLogNotifier } from './alerts/log-notifier.js';
import { createSlackNotifier } from './alerts/slack-notifier.js';
import type { ControllerConfig } from './config.js';
import { createFailureLimiter } from './enrol-rate-limit.js';
import { ControllerError } from './errors.js';
import { createFanout } from './fanout.js';
import { vigilHome, type ControllerInfo } from './home.js';
import { readCaKey } from './init.js';
import { formatHostPort, parseHostPort, type HostPort } from './listen-address.js';
import { loadCurrentPolicy } from './policy/current-policy.js';
import { pushPolicy } from './policy/push-policy.js';
import { createAdminService } from './services/admin-service.js';
import { createConnectService, type DownMessage } from './services/connect-service.js';
import { createReconcileResponder } from './reconcile/reconcile-responder.js';
import { createEnrollService } from './services/enroll-service.js';
import { createErrorInterceptor } from './services/error-interceptor.js';
import { createOperatorRevocationInterceptor } from './services/operator-interceptor.js';
import { identityFromRequest, peerIdentityKey, remoteAddressFromRequest, remoteAddressKey } from './services/peer-identity.js';
import {
  createAgentStore,
  createAlertStore,
  createAuditStore,
  createCertificateStore,
  createCommandStore,
  createEventStore,
  createSyncStore,
  createStateStore,
  createPgliteSql,
  createPgSql,
  createPolicyStore,
  createTokenStore,
  migrate,
  type Clock,
  type Sql,
} from './store/index.js';
import { listenTls, type TlsListener } from './tls-listener.js';

export interface RunningController {
  /** host:port of the mutual-TLS listener (agents' streams, admin API). */
  readonly address: string;
  /** host:port of the enrolment listener. */
  readonly enrolAddress: string;
  /** This replica's id in the fan-out between replicas. */
  readonly replicaId: string;
  stop(): Promise<void>;
}

/** Admin calls (a policy, a page of files); agents' streams have their own, smaller cap. */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

async function openDatabase(config: ControllerConfig, dataDir: string, logger: Logger): Promise<Sql> {
  if (config.databaseUrl) {
    logger.info({ store: 'postgres' }, 'using the Postgres server from DATABASE_URL');
    return createPgSql(config.databaseUrl);
  }
  logger.info({ store: 'pglite', dataDir }, 'using embedded Postgres (PGlite)');
  return createPgliteSql(dataDir);
}

/** Starts the controller: database, migrations, CA, fan-out, both listeners. main.ts only parses flags. */
export async function startController(config: ControllerConfig, deps: { logger: Logger; clock: Clock }): Promise<RunningController> {
  const { logger, clock } = deps;
  const home = vigilHome(config.home);
  let info: ControllerInfo;
  try {
    info = JSON.parse(await readFile(home.controllerInfo, 'utf8')) as ControllerInfo;
  } catch (cause) {
    throw new ControllerError('failed_precondition', `no controller set-up in ${home.dir}: run \`vigilctl init\` first`, { cause });
  }
  const caPem = await readFile(home.caCert, 'utf8');
  const ca = createCertificateAuthority({ certPem: caPem, keyPem: await readCaKey(home, config.caPassphrase) }, { trustDomain: info.trustDomain, now: clock });
  const serverKey = await readSecretFile(home.serverKey);
  const serverChain = await readFile(home.serverCert, 'utf8');

  const sql = await openDatabase(config, home.dataDir, logger);
  const applied = await migrate(sql);
  if (applied.length) logger.info({ applied }, 'database migrations applied');

  const agents = createAgentStore(sql, clock);
  const events = createEventStore(sql, clock);
  const reconcile = createReconcileResponder(createSyncStore(sql));
  const policies = createPolicyStore(sql, clock);
  const commands = createCommandStore(sql, clock);
  const certificates = createCertificateStore(sql, clock);
  const audit = createAuditStore(sql, clock);
  const policy = await loadCurrentPolicy(policies);
  // The first operator's certificate (made by init, outside the database) is recorded so that it
  // can be revoked like any other.
  await recordHomeOperator(home.operatorCert, certificates);
  const notifier = config.slack
    ? createSlackNotifier({ ...config.slack, logger: logger.child({ component: 'slack' }) })
    : createLogNotifier(logger.child({ component: 'alerts' }));
  const alerts = createAlertDispatcher(notifier, createAlertStore(sql, clock), logger.child({ component: 'alerts' }), clock);
  const fanout = await createFanout(sql, logger.child({ component: 'fanout' }));

  const reportDuplicate = (agentId: string, olderRemote: string, newerRemote: string) => {
    const text = `agent ${agentId} opened a second live stream (from ${newerRemote || 'unknown'}) while one was open (from ${olderRemote || 'unknown'}): possible credential theft; the older stream was closed`;
    logger.warn({ agentId, olderRemote, newerRemote }, text);
    void audit.record({ actor: 'controller', action: 'security.duplicate_stream', target: agentId, details: { olderRemote, newerRemote } }).catch(() => undefined);
    void notifier.security({ kind: 'duplicate_stream', agentId, text }).catch((err: unknown) => logger.error({ err }, 'security notification failed'));
  };
  const hub = createAgentHub<DownMessage>({
    onDuplicate: (older, newer) => {
      reportDuplicate(newer.agentId, older.remoteAddress, newer.remoteAddress);
      older.close(new ControllerError('unavailable', 'replaced by a newer stream of the same agent'));
    },
  });
  fanout.subscribe((event, origin) => {
    if (origin === fanout.replicaId) return; // acted on locally already
    switch (event.type) {
      case 'revoked':
        hub.get(event.agentId)?.close(new ControllerError('permission_denied', `agent ${event.agentId} was revoked: ${event.reason}; enrol it again`));
        return;
      case 'policy':
        void policy
          .refresh()
          .then(() => pushPolicy(hub, policy))
          .catch((err: unknown) => logger.error({ err }, 'policy refresh after a fan-out event failed'));
        return;
      case 'stream': {
        const local = hub.get(event.agentId);
        if (local && local.streamId !== event.streamId) {
          reportDuplicate(event.agentId, local.remoteAddress, event.remote);
          local.close(new ControllerError('unavailable', 'replaced by a newer stream of the same agent on another controller'));
        }
        return;
      }
    }
  });

  // Safety net behind the fan-out: a replica that missed a notification (its listening connection
  // was down) still cuts revoked agents' streams, at the latest on the next sweep.
  const sweepRevoked = async () => {
    for (const id of await agents.revokedAmong(hub.ids())) {
      hub.get(id)?.close(new ControllerError('permission_denied', `agent ${id} was revoked; enrol it again`));
    }
  };
  const resync = () => {
    void sweepRevoked().catch((err: unknown) => logger.error({ err }, 'revocation sweep failed'));
    void policy
      .refresh()
      .then(() => pushPolicy(hub, policy))
      .catch((err: unknown) => logger.error({ err }, 'policy refresh failed'));
  };
  fanout.onResync(resync);
  // The outbox: alerts left unsent (Slack down, a crash between commit and send) go out again.
  const sweepAlerts = () => void alerts.sweep(30_000).catch((err: unknown) => logger.error({ err }, 'alert outbox sweep failed'));
  const alertSweep = setInterval(sweepAlerts, config.alertSweepMs);
  alertSweep.unref();
  sweepAlerts();
  const sweep = setInterval(() => void sweepRevoked().catch((err: unknown) => logger.error({ err }, 'revocation sweep failed')), config.revocationSweepMs);
  sweep.unref();

  const interceptors = [createErrorInterceptor(logger)];
  let enrolListener: TlsListener | undefined;
  let mtls: TlsListener | undefined;
  // Addresses as agents reach them: a wildcard listen host is replaced by the host init recorded.
  const advertised = (listen: HostPort, recorded: string, port: number | undefined) => {
    const host = ['0.0.0.0', '::'].includes(listen.host) ? parseHostPort(recorded, 'controller.json').host : listen.host;
    return formatHostPort({ host, port: port ?? listen.port });
  };
  const enrolAddress = () => advertised(config.enrolListen, info.enrolAddress, enrolListener?.port);
  const connectAddress = () => advertised(config.listen, info.address, mtls?.port);

  const enrolHandler = connectNodeAdapter({
    routes: (router) =>
      router.service(
        AgentService,
        createEnrollService({
          sql,
          ca,
          clock,
          logger,
          agentCertLifetimeMs: config.agentCertLifetimeMs,
          connectAddress,
          failures: createFailureLimiter({ maxFailures: config.enrolFailures.max, windowMs: config.enrolFailures.windowMs, clock }),
        }),
      ),
    interceptors,
    readMaxBytes: 64 * 1024,
    grpcWeb: false,
    contextValues: (req) => createContextValues().set(remoteAddressKey, remoteAddressFromRequest(req)),
  });
  const contextValues = (req: Parameters<NonNullable<Parameters<typeof connectNodeAdapter>[0]['contextValues']>>[0]) =>
    createContextValues().set(peerIdentityKey, identityFromRequest(req, info.trustDomain));
  // Agents' streams: messages read up to a small cap (proto/wire-limits.ts), so that no agent's
  // message stalls the others while it is decoded.
  const agentHandler = connectNodeAdapter({
    routes: (router) => {
      router.service(
        AgentService,
        createConnectService({ logger, clock, hub, policy, agents, certificates, events, reconcile, commands, alerts, fanout, ca, agentCertLifetimeMs: config.agentCertLifetimeMs, maxBatch: config.maxBatch }),
      );
    },
    interceptors,
    readMaxBytes: MAX_AGENT_MESSAGE_BYTES,
    grpcWeb: false,
    contextValues,
  });
  const adminHandler = connectNodeAdapter({
    routes: (router) => {
      router.service(
        AdminService,
        createAdminService({
          logger,
          clock,
          ca,
          certificates,
          fanout,
          operatorCertLifetimeMs: config.operatorCertLifetimeMs,
          hub,
          policy,
          agents,
          events,
          files: createStateStore(sql),
          commands,
          tokens: createTokenStore(sql, clock),
          policies,
          audit,
          pins: [ca.pin],
          enrolAddress,
        }),
      );
    },
    interceptors: [...interceptors, createOperatorRevocationInterceptor(certificates)],
    readMaxBytes: MAX_MESSAGE_BYTES,
    grpcWeb: false,
    contextValues,
  });
  const agentPrefix = `/${AgentService.typeName}/`;
  const mainHandler: typeof agentHandler = (req, res) => (req.url?.startsWith(agentPrefix) ? agentHandler(req, res) : adminHandler(req, res));

  mtls = await listenTls({ at: config.listen, keyPem: serverKey, certChainPem: serverChain, clientCaPem: caPem, handler: mainHandler });
  enrolListener = await listenTls({ at: config.enrolListen, keyPem: serverKey, certChainPem: serverChain, handler: enrolHandler });
  const address = formatHostPort({ host: config.listen.host, port: mtls.port });
  const enrolBound = formatHostPort({ host: config.enrolListen.host, port: enrolListener.port });
  logger.info({ address, enrolAddress: enrolBound, pin: ca.pin, replicaId: fanout.replicaId }, 'controller listening');

  return {
    address,
    enrolAddress: enrolBound,
    replicaId: fanout.replicaId,
    async stop() {
      clearInterval(sweep);
      clearInterval(alertSweep);
      await Promise.all([mtls!.close(), enrolListener!.close()]);
      await alerts.idle();
      await fanout.close();
      await sql.close();
    },
  };
}

async function recordHomeOperator(path: string, certificates: ReturnType<typeof createCertificateStore>): Promise<void> {
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
  } catch {
    return; // an operator home without its credential on the controller host
  }
  const cert = new X509Certificate(pem);
  const uri = (cert.subjectAltName ?? '').replace(/^URI:/, '');
  await certificates.ensure({
    serial: cert.serialNumber.toLowerCase(),
    agentId: null,
    subject: uri,
    keyFingerprint: spkiFingerprint(cert.publicKey),
    tokenId: null,
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    kind: 'operator',
    role: /(^|\n)OU=admin($|\n)/.test(cert.subject) ? 'admin' : 'viewer',
  });
}
