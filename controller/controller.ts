import { readFile } from 'node:fs/promises';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import type { Logger } from 'pino';
import { AdminService } from '../proto/gen/vigil/v1/admin_pb.js';
import { AgentService } from '../proto/gen/vigil/v1/agent_pb.js';
import { createCertificateAuthority, readSecretFile } from '../pki/index.js';
import { createAgentHub } from './agent-hub.js';
import { createAlertDispatcher } from './alerts/alert-dispatcher.js';
import { createLogNotifier } from './alerts/log-notifier.js';
import { createSlackNotifier } from './alerts/slack-notifier.js';
import type { ControllerConfig } from './config.js';
import { ControllerError } from './errors.js';
import { vigilHome, type ControllerInfo } from './home.js';
import { formatHostPort, parseHostPort, type HostPort } from './listen-address.js';
import { loadCurrentPolicy } from './policy/current-policy.js';
import { createAdminService } from './services/admin-service.js';
import { createConnectService, type DownMessage } from './services/connect-service.js';
import { createEnrollService } from './services/enroll-service.js';
import { createErrorInterceptor } from './services/error-interceptor.js';
import { identityFromRequest, peerIdentityKey } from './services/peer-identity.js';
import {
  createAgentStore,
  createAlertStore,
  createAuditStore,
  createCommandStore,
  createEventStore,
  createPgliteSql,
  createPgSql,
  createPolicyStore,
  createTokenStore,
  migrate,
  type Clock,
  type Sql,
} from './store/index.js';
import { listenTls, type TlsListener } from './tls-listener.js';
import { createContextValues } from '@connectrpc/connect';

export interface RunningController {
  /** host:port of the mutual-TLS listener (agents' streams, admin API). */
  readonly address: string;
  /** host:port of the enrolment listener. */
  readonly enrolAddress: string;
  stop(): Promise<void>;
}

const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

async function openDatabase(config: ControllerConfig, dataDir: string, logger: Logger): Promise<Sql> {
  if (config.databaseUrl) {
    logger.info({ store: 'postgres' }, 'using the Postgres server from DATABASE_URL');
    return createPgSql(config.databaseUrl);
  }
  logger.info({ store: 'pglite', dataDir }, 'using embedded Postgres (PGlite)');
  return createPgliteSql(dataDir);
}

/** Starts the controller: database, migrations, CA, both listeners. main.ts only parses flags. */
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
  const ca = createCertificateAuthority({ certPem: caPem, keyPem: await readSecretFile(home.caKey) }, { trustDomain: info.trustDomain, now: clock });
  const serverKey = await readSecretFile(home.serverKey);
  const serverChain = await readFile(home.serverCert, 'utf8');

  const sql = await openDatabase(config, home.dataDir, logger);
  const applied = await migrate(sql);
  if (applied.length) logger.info({ applied }, 'database migrations applied');

  const agents = createAgentStore(sql, clock);
  const events = createEventStore(sql, clock);
  const policies = createPolicyStore(sql, clock);
  const commands = createCommandStore(sql, clock);
  const policy = await loadCurrentPolicy(policies);
  const hub = createAgentHub<DownMessage>(logger.child({ component: 'hub' }));
  const notifier = config.slack
    ? createSlackNotifier({ ...config.slack, logger: logger.child({ component: 'slack' }) })
    : createLogNotifier(logger.child({ component: 'alerts' }));
  const alerts = createAlertDispatcher(notifier, createAlertStore(sql, clock), logger.child({ component: 'alerts' }));
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
      router.service(AgentService, createEnrollService({ sql, ca, clock, logger, agentCertLifetimeMs: config.agentCertLifetimeMs, connectAddress })),
    interceptors,
    readMaxBytes: 64 * 1024,
    grpcWeb: false,
  });
  const mainHandler = connectNodeAdapter({
    routes: (router) => {
      router.service(AgentService, createConnectService({ logger, hub, policy, agents, events, commands, alerts, maxBatch: config.maxBatch }));
      router.service(
        AdminService,
        createAdminService({
          logger,
          hub,
          policy,
          agents,
          events,
          commands,
          tokens: createTokenStore(sql, clock),
          policies,
          audit: createAuditStore(sql, clock),
          pins: [ca.pin],
          enrolAddress,
        }),
      );
    },
    interceptors,
    readMaxBytes: MAX_MESSAGE_BYTES,
    grpcWeb: false,
    contextValues: (req) => createContextValues().set(peerIdentityKey, identityFromRequest(req, info.trustDomain)),
  });

  mtls = await listenTls({ at: config.listen, keyPem: serverKey, certChainPem: serverChain, clientCaPem: caPem, handler: mainHandler });
  enrolListener = await listenTls({ at: config.enrolListen, keyPem: serverKey, certChainPem: serverChain, handler: enrolHandler });
  const address = formatHostPort({ host: config.listen.host, port: mtls.port });
  logger.info({ address, enrolAddress: formatHostPort({ host: config.enrolListen.host, port: enrolListener.port }), pin: ca.pin }, 'controller listening');

  return {
    address,
    enrolAddress: formatHostPort({ host: config.enrolListen.host, port: enrolListener.port }),
    async stop() {
      await Promise.all([mtls!.close(), enrolListener!.close()]);
      await alerts.idle();
      await sql.close();
    },
  };
}
