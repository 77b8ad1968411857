import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { startHealthServer } from '../core/health-server.js';
import { createAlertOutbox } from './alerts/outbox.js';
import type { Notifier } from './alerts/notifier.js';
import { notifierForConfig } from './alerts/notifier-for-config.js';
import type { ControllerConfig } from './config.js';
import { readControllerHome } from './controller-home.js';
import { openDatabase } from './database.js';
import { createFailureLimiter } from './enrol-rate-limit.js';
import { createFanout } from './fanout.js';
import { createIngestQueue } from './ingest/ingest-queue.js';
import { createAgentHub } from './fleet/agent-hub.js';
import { createCommandDispatch } from './fleet/command-dispatch.js';
import { createCommandReports } from './fleet/command-reports.js';
import { createDuplicateStreams } from './fleet/duplicate-streams.js';
import { createPresence } from './fleet/presence.js';
import { createRevocations } from './fleet/revocations.js';
import { recordHomeOperator } from './identity/home-operator.js';
import { createIssuer } from './identity/issuer.js';
import { startListeners } from './listeners.js';
import { loadCurrentPolicy } from './policy/current-policy.js';
import { createPolicyDistribution } from './policy/distribution.js';
import { createReconcileResponder } from './reconcile/reconcile-responder.js';
import type { OnChangesRecorded } from './recorded-changes.js';
import { createAdminService } from './services/admin-service.js';
import { createConnectService } from './services/connect-service.js';
import { createEnrolService } from './services/enrol-service.js';
import { createStreamLookups } from './services/stream/stream-lookups.js';
import { createOperatorRevocationInterceptor } from './services/operator-interceptor.js';
import { createControllerMetrics } from './observability/controller-metrics.js';
import { createControllerReadiness } from './observability/controller-readiness.js';
import { readBacklog } from './observability/backlog.js';
import { withEnrolMetrics } from './observability/enrol-metrics.js';
import { withRenewalMetrics, withRevocationMetrics } from './observability/identity-metrics.js';
import { createStores, type Clock } from './store/index.js';
import { startSweeps } from './sweeps.js';

export type { RecordedChanges, OnChangesRecorded } from './recorded-changes.js';

export interface RunningController {
  /** host:port of the mutual-TLS listener (agents' streams, admin API). */
  readonly address: string;
  /** host:port of the enrolment listener. */
  readonly enrolAddress: string;
  /** This replica's id in the fan-out between replicas. */
  readonly replicaId: string;
  /** host:port of /metrics, /healthz and /readyz; null when not served. */
  readonly metricsAddress: string | null;
  stop(): Promise<void>;
}

export interface ControllerDeps {
  readonly logger: Logger;
  readonly clock: Clock;
  /** Called with the changes each committed batch stored (for a program that embeds the controller). */
  /** Where alerts go when Slack is not configured (default: the controller's log). */
  readonly alertsWithoutSlack?: Notifier;
  readonly onChangesRecorded?: OnChangesRecorded;
}

/** Starts the controller: home, database, fleet parts, services, both listeners. Wiring only. */
export async function startController(config: ControllerConfig, deps: ControllerDeps): Promise<RunningController> {
  const { logger, clock } = deps;
  // Health first: /healthz answers and /readyz says why not while the rest starts.
  const metrics = createControllerMetrics();
  const readiness = createControllerReadiness();
  const health = config.metricsListen ? await startHealthServer({ listen: config.metricsListen, registry: metrics.registry, notReady: () => readiness.notReady(), logger }) : null;
  const home = await readControllerHome(config.home, config.caPassphrase, clock);
  const { ca } = home;
  const sql = await openDatabase(config.databaseUrl, home.paths.dataDir, logger);
  readiness.databaseReady(sql);
  const stores = createStores(sql, clock);
  const issuer = withRenewalMetrics(metrics, createIssuer({ ca, certificates: stores.certificates, agentCertLifetimeMs: config.agentCertLifetimeMs, operatorCertLifetimeMs: config.operatorCertLifetimeMs }));
  await recordHomeOperator(home.paths.operatorCert, issuer);
  const policy = await loadCurrentPolicy(stores.policies);
  const notifier = notifierForConfig(config.slack, logger, deps.alertsWithoutSlack);
  const outbox = createAlertOutbox({ notifier, store: stores.alertStore, logger: logger.child({ component: 'alerts' }), clock });
  const fanout = await createFanout(sql, logger.child({ component: 'fanout' }));

  const streams = createDuplicateStreams({ fanout, audit: stores.audit, notifier, logger });
  const hub = createAgentHub({ onDuplicate: streams.onDuplicate });
  streams.watch(hub);
  const revocations = withRevocationMetrics(metrics, createRevocations({ agents: stores.agents, hub, fanout, logger, clock }));
  const distribution = createPolicyDistribution({ current: policy, store: stores.policies, hub, fanout, logger });
  const dispatch = createCommandDispatch({ commands: stores.commands, hub, fanout, clock, logger, expiryMs: config.commandExpiryMs });
  const sweeps = startSweeps({ ...config, revocations, outbox, commands: dispatch, logger });

  const presence = createPresence({ store: stores.presence, replica: { id: fanout.replicaId, name: `${hostname()} ${fanout.replicaId.slice(0, 8)}` }, clock, logger: logger.child({ component: 'presence' }) });
  const commandReports = createCommandReports(stores.commands);
  const ingest = createIngestQueue(metrics.timedIngest((batches) => stores.events.ingestGroup(batches)), config.ingest);
  metrics.observe({ streams: () => hub.count(), ingestQueue: () => ingest.stats(), backlog: () => readBacklog(sql), ...(sql.poolStats ? { pool: () => sql.poolStats!() } : {}) });
  const parts = { ...stores, logger, clock, ca, issuer, hub, streams, policy, distribution, revocations, dispatch, alerts: outbox, ingest, presence };
  const listeners = await startListeners(config, home, logger, {
    enrol: (connectAddress) =>
      withEnrolMetrics(metrics, createEnrolService({
        sql,
        ca,
        issuer,
        clock,
        logger,
        connectAddress,
        failures: createFailureLimiter({ maxFailures: config.enrolFailures.max, windowMs: config.enrolFailures.windowMs, store: stores.enrolFailures, clock }),
      })),
    connect: createConnectService({ ...parts, commandReports, streamLookups: createStreamLookups(stores.agents), reconcile: createReconcileResponder(stores.sync), maxBatch: config.maxBatch, onChangesRecorded: deps.onChangesRecorded }),
    admin: (enrolAddress) => createAdminService({ ...parts, pins: [ca.pin], enrolAddress }),
    adminInterceptors: [createOperatorRevocationInterceptor(stores.certificates)],
  });
  readiness.listening();
  logger.info({ address: listeners.address, enrolAddress: listeners.enrolAddress, metricsAddress: health?.address ?? null, pin: ca.pin, replicaId: fanout.replicaId }, 'controller listening');

  return {
    address: listeners.address,
    enrolAddress: listeners.enrolAddress,
    replicaId: fanout.replicaId,
    metricsAddress: health?.address ?? null,
    async stop() {
      readiness.stopping();
      sweeps.stop();
      await listeners.close();
      await ingest.idle();
      await commandReports.idle();
      await presence.stop();
      await outbox.idle();
      await fanout.close();
      await sql.close();
      await health?.close();
    },
  };
}
