import type { Logger } from 'pino';
import type { Policy } from '../../core/model.js';
import type { Credentials } from '../credentials.js';
import type { AgentError } from '../errors.js';
import type { LocalStore } from '../store/local-store.js';
import type { Change } from '../store/journal.js';
import type { AgentClient } from '../transport/agent-client.js';
import { openAgentStream, type AgentStream } from '../transport/agent-stream.js';
import type { ScanReport } from '../../core/scan-summary.js';
import type { AgentCommand, DownMessage } from '../transport/stream-messages.js';
import { failedCommandReport } from './command-failure.js';
import { createOutboxPump } from './outbox-pump.js';
import { createReconcileSession, type ReconcileSession } from './reconcile-session.js';
import { createRenewal } from './renewal.js';
import { createStatusReporter } from './status-reporter.js';

/** What a session asks of the rest of the agent (monitor-router.ts answers it with the monitor). */
export interface SessionRouter {
  /** A policy came down; resolves with its first scan's report, or null when it was not applied. */
  policy(policy: Policy): Promise<ScanReport | null>;
  /** A command came down; resolves with its report, or null when there is none. */
  command(id: string, command: AgentCommand): Promise<ScanReport | null>;
  /** The policy in force. */
  currentPolicy(): Policy | null;
  /** Records reconciliation repairs on the monitor's serial path. */
  recordRepairs(repairs: () => Change[]): Promise<number>;
  /** The local state is behind the controller's (restored): re-scan. */
  catchUp(): void;
  /** Roots only scheduled scans cover (status). */
  scheduledOnly(): readonly string[];
  /** Subscribes to "deltas were queued" and "the watch status changed"; returns the unsubscribe. */
  watch(onQueued: () => void, onStatus: () => void): () => void;
}

export interface StreamSessionOptions {
  readonly client: AgentClient;
  readonly credentials: Credentials;
  readonly store: LocalStore;
  readonly router: SessionRouter;
  readonly hostname: string;
  readonly agentVersion: string;
  readonly saveRenewed: (keyPem: string, certPem: string) => Promise<void>;
  /** The renewed certificate is stored: the caller reconnects at once. */
  readonly onRenewed: () => void;
  /** The controller's welcome came: the stream is up. */
  readonly onWelcome?: () => void;
  readonly batchSize: number;
  readonly maxInFlight: number;
  readonly reconcileEveryMs: number;
  readonly renewRetryMs: number;
  readonly clock: () => Date;
  readonly logger: Logger;
}

/**
 * One Connect stream: hello, the welcome (the controller's committed seq: the queue is sent after
 * it), acks, policy and commands routed to the agent, renewal, reconciliation, status. Resolves
 * when the controller closes the stream; rejects with a typed AgentError when it fails.
 */
export function runStreamSession(opts: StreamSessionOptions): { done: Promise<void>; cancel(): void } {
  const log = opts.logger;
  const { store, router } = opts;
  let stream!: AgentStream;
  let reconcile: ReconcileSession | null = null;
  const send: AgentStream['send'] = (m) => stream.send(m);
  const pump = createOutboxPump({ outbox: store.outbox, send: (deltas) => send({ type: 'deltas', deltas }), batchSize: opts.batchSize, maxInFlight: opts.maxInFlight });
  const status = createStatusReporter({ store, scheduledOnly: () => router.scheduledOnly(), send: (s) => send({ type: 'status', status: s }), logger: log });
  const renewal = createRenewal({
    credentials: opts.credentials,
    hostname: opts.hostname,
    clock: opts.clock,
    logger: log,
    sendCsr: (csrPem) => send({ type: 'renew', csrPem }),
    save: opts.saveRenewed,
    retryMs: opts.renewRetryMs,
    onStored: () => {
      opts.onRenewed();
      stream.cancel();
    },
  });
  const report = (r: ScanReport | null) => {
    if (r) send({ type: 'scanReport', report: r });
  };
  const unwatch = router.watch(
    () => {
      pump.pump();
      status.queued();
    },
    () => status.report(),
  );

  const welcome = (committed: number) => {
    if (committed > store.outbox.lastSeq()) {
      // The controller has committed numbers this agent has not used yet: its local state was
      // rolled back (snapshot or backup restored). Number what is queued after the controller's,
      // so nothing is mistaken for a resend, and re-scan to catch up.
      const moved = store.outbox.renumberAfter(committed);
      log.warn({ committedSeq: committed, moved }, "local state is older than the controller's (restored?); renumbered the queue and re-scanning");
      router.catchUp();
    }
    const dropped = store.outbox.ack(committed);
    pump.start(committed);
    renewal.schedule();
    status.report();
    reconcile = createReconcileSession({
      store,
      policy: () => router.currentPolicy(),
      recordRepairs: (r) => router.recordRepairs(r),
      send,
      allSent: () => pump.allSent(),
      onDone: () => status.report(),
      everyMs: opts.reconcileEveryMs,
      clock: opts.clock,
      logger: log,
    });
    reconcile.start('connect');
    return dropped;
  };

  const handle = (m: DownMessage) => {
    switch (m.type) {
      case 'welcome': {
        const dropped = welcome(m.committedSeq);
        opts.onWelcome?.();
        log.info({ agentId: m.agentId, committedSeq: m.committedSeq, dropped, queued: store.outbox.length() }, 'connected to controller');
        return;
      }
      case 'ack':
        // Refused for their content: accounted for by the controller and acked with the rest
        // (docs/delivery.md, "Refused deltas"); never sent again.
        for (const r of m.refused) log.error({ seq: r.seq, code: r.code, field: r.field, reason: r.reason }, 'the controller refused a delta; it is recorded there as refused');
        pump.acked(m.upToSeq);
        if (store.outbox.length() === 0) {
          status.report(); // the queue is delivered: vigilctl agents show says so
          if (store.outbox.resync()) reconcile?.start('resync');
        }
        return;
      case 'renewed':
        renewal.renewed(m.certificatePem, m.notAfter);
        return;
      case 'policy':
        router.policy(m.policy).then(report, (err: unknown) => log.error({ err }, 'applying policy failed'));
        return;
      case 'command':
        router.command(m.id, m.command).then(report, (err: unknown) => {
          log.error({ err, commandId: m.id }, 'command failed');
          report(failedCommandReport(m.id, err instanceof Error ? err.message : String(err), opts.clock()));
        });
        return;
      case 'syncVerdicts':
        if (!reconcile?.verdicts(m.exchangeId, m.verdicts)) log.warn({ exchangeId: m.exchangeId }, 'verdicts for an unknown exchange ignored');
        return;
      case 'syncRepairs':
        if (!reconcile?.repairs(m.exchangeId, m.repairs)) log.warn({ exchangeId: m.exchangeId }, 'repairs for an unknown exchange ignored');
        return;
    }
  };

  const done = new Promise<void>((resolve, reject) => {
    stream = openAgentStream(opts.client, {
      onMessage: handle,
      onEnd: (err: AgentError | null) => {
        renewal.stop();
        reconcile?.end();
        pump.end();
        unwatch();
        if (err) reject(err);
        else resolve();
      },
    });
  });
  send({ type: 'hello', hostname: opts.hostname, agentVersion: opts.agentVersion, policyVersion: store.meta.policy()?.version ?? 0 });
  return { done, cancel: () => stream.cancel() };
}
