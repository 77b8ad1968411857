import { randomUUID } from 'node:crypto';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { Logger } from 'pino';
import { displayPath, type FileDelta } from '../../core/model.js';
import type { ConnectRequest } from '../../proto/gen/vigil/v1/agent_pb.js';
import { scanReportFromPb } from '../../proto/scan-summary.js';
import { syncEntriesFromPb, syncRangesFromPb, syncRepairsToPb, syncVerdictsToPb } from '../../proto/sync-messages.js';
import type { AlertOutbox } from '../alerts/outbox.js';
import { agentRevokedError, ControllerError } from '../errors.js';
import type { AgentHub, AgentSession } from '../fleet/agent-hub.js';
import type { CommandDispatch } from '../fleet/command-dispatch.js';
import type { CommandReports } from '../fleet/command-reports.js';
import type { DuplicateStreams } from '../fleet/duplicate-streams.js';
import type { Presence } from '../fleet/presence.js';
import type { Revocations } from '../fleet/revocations.js';
import type { Issuer } from '../identity/issuer.js';
import type { IngestQueue } from '../ingest/ingest-queue.js';
import type { CurrentPolicy } from '../policy/current-policy.js';
import type { ReconcileResponder } from '../reconcile/reconcile-responder.js';
import type { OnChangesRecorded } from '../recorded-changes.js';
import type { AgentStore, Clock, DeltaRefusal, EventStore } from '../store/index.js';
import { deliveryStatusFromPb } from './delivery-status.js';
import { requireAgentIdentity, type PeerIdentity } from './peer-identity.js';
import type { AgentWire } from './stream/agent-wire.js';
import { authoriseAgentStream, certificateExpiredError } from './stream/authorise.js';
import { readDeltaBatch } from './stream/delta-batch.js';
import { createDeltaPipeline } from './stream/delta-pipeline.js';
import { downMessageToPb } from './stream/down-message-pb.js';
import { createStreamRenewal } from './stream/renewal.js';

export interface ConnectDeps {
  readonly logger: Logger;
  readonly clock: Clock;
  readonly hub: AgentHub;
  readonly streams: Pick<DuplicateStreams, 'announce'>;
  readonly revocations: Pick<Revocations, 'revokedRecently'>;
  /** Where this replica says which agents it holds, in batches. */
  readonly presence: Presence;
  readonly policy: CurrentPolicy;
  readonly agents: AgentStore;
  /** The lookup a new stream is judged by, batched across streams (stream/stream-lookups.ts). */
  readonly streamLookups: Pick<AgentStore, 'forStream'>;
  readonly issuer: Issuer;
  readonly events: EventStore;
  /** Where delta batches are committed: fair across agents, grouped (controller/ingest). */
  readonly ingest: IngestQueue;
  readonly reconcile: ReconcileResponder;
  /** Where agents' reports on their commands are recorded, in batches. */
  readonly commandReports: CommandReports;
  readonly dispatch: Pick<CommandDispatch, 'deliverPending'>;
  readonly alerts: AlertOutbox;
  /** Most deltas accepted in one batch. */
  readonly maxBatch: number;
  readonly onChangesRecorded?: OnChangesRecorded | undefined;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

/** The agent stream's protocol, served on one stream at a time by the transport (agent-stream-route.ts). */
export interface ConnectService {
  /**
   * Runs one agent stream: resolves when it ends normally (the agent half-closed, the stream went
   * away), rejects with the error it ends with (mapped to a gRPC status by the transport).
   * `identity` is the peer certificate's, or null when it is not one of ours.
   */
  serve(identity: PeerIdentity | null, wire: AgentWire): Promise<void>;
}

/**
 * Connect: the agent's live stream. Up: hello, delta batches, scan reports, renewals. Down: welcome,
 * acks (only after commit), policy, commands, renewed certificates. The agent's identity is its
 * certificate, nothing else: deltas are always stored under that identity. The one place the hub's
 * messages become wire messages.
 */
export function createConnectService(deps: ConnectDeps): ConnectService {
  return {
    async serve(identity, wire) {
      const peer = requireAgentIdentity(identity);
      const { agent, cert } = await authoriseAgentStream(peer, { agents: deps.streamLookups, clock: deps.clock });
      if (wire.signal.aborted) return;
      // Made when first used: an idle stream logs nothing after its hello (a pino child is ~0.6 KB).
      let child: Logger | undefined;
      const log = () => (child ??= deps.logger.child({ component: 'stream', agentId: peer.id }));
      let hostname = agent.hostname;
      // Settles once: the first of the agent's half-close, a failure, the hub closing the stream
      // (a duplicate, a revocation), the certificate's expiry, or the stream going away.
      let finish!: (err?: unknown) => void;
      const done = new Promise<void>((resolve, reject) => (finish = (err) => (err === undefined ? resolve() : reject(err))));
      let open = true;
      const send: AgentWire['send'] = (m) => {
        if (open) wire.send(m);
      };
      const session: AgentSession = {
        agentId: peer.id,
        streamId: randomUUID(),
        labels: agent.labels,
        remoteAddress: peer.remoteAddress,
        connectedAt: deps.clock(),
        send: (m) => {
          send(downMessageToPb(m));
          return open;
        },
        close: (err) => finish(err),
      };
      const detachHub = deps.hub.attach(session);
      deps.presence.connected(peer.id, session.streamId);
      const onAbort = () => finish();
      wire.signal.addEventListener('abort', onAbort, { once: true });
      let expiry: NodeJS.Timeout | undefined;
      try {
        // A revocation that committed between the check above and attach() found no session to
        // cut: if this replica heard of it meanwhile, end here (fleet/revocations.ts).
        if (deps.revocations.revokedRecently(peer.id)) throw agentRevokedError(peer.id);
        // The stream ends when the certificate it was opened with expires.
        expiry = setTimeout(() => finish(certificateExpiredError()), Math.min(Math.max(0, cert.notAfter.getTime() - deps.clock().getTime()), MAX_TIMER_MS));
        deps.streams.announce(session);
        const renew = createStreamRenewal(peer, deps);

        /** Commits one delta message through the fair ingest queue, then acks it (in order: the queue commits an agent's batches in order). */
        const commitDeltas = async (deltas: FileDelta[], refusals: DeltaRefusal[]) => {
          const own = deps.policy.forLabels(agent.labels);
          const res = await deps.ingest.submit({ agentId: peer.id, deltas, refusals, alertRuleFor: own ? own.alertRuleFor : () => null });
          if (res.revoked) throw agentRevokedError(peer.id);
          for (const r of res.refused) {
            log().error({ seq: r.seq, field: r.field, reason: r.reason, kind: r.kind, path: r.path ? displayPath(r.path) : null }, 'delta refused: recorded as refused and acked, not stored');
          }
          send({ msg: { case: 'ack', value: { upToSeq: BigInt(res.committedSeq), refused: res.refused.map((r) => ({ seq: BigInt(r.seq), field: r.field, reason: r.reason, code: 'INVALID_ARGUMENT' })) } } });
          // Per batch, not per delta: history is in Postgres, and `vigilctl events` reads it.
          log().debug({ received: deltas.length, stored: res.stored.length, refused: res.refused.length, committedSeq: res.committedSeq }, 'batch committed');
          if (res.stored.length) deps.onChangesRecorded?.({ agentId: peer.id, hostname, changes: res.stored });
          if (res.alerts.length) deps.alerts.committed({ hostname, alerts: res.alerts, stored: res.stored });
        };

        const handle = async (req: ConnectRequest) => {
          switch (req.msg.case) {
            case 'hello': {
              const h = req.msg.value;
              // Stored with every agent's presence in one statement: a NUL (Postgres text cannot hold one) must not fail it.
              hostname = h.hostname.slice(0, 255).replaceAll('\0', '\uFFFD') || hostname;
              deps.presence.seen(peer.id, { hostname, policyVersion: Number(h.policyVersion) });
              log().info({ hostname, policyVersion: Number(h.policyVersion), agentVersion: h.agentVersion, remote: peer.remoteAddress }, 'agent connected');
              return;
            }
            case 'scanReport': {
              const { commandId, policyVersion, summary, failure } = scanReportFromPb(req.msg.value);
              if (commandId) await deps.commandReports.record({ id: commandId, agentId: peer.id, result: summary, failure });
              if (policyVersion > 0) deps.presence.seen(peer.id, { policyVersion });
              // A command's report is in its row (vigilctl commands show), a policy's version in the agent's
              // (agents ls): no info line per agent of a fleet operation or a policy push; a failure is a warning.
              log()[failure ? 'warn' : 'debug']({ commandId, policyVersion, failure, ...summary }, 'scan report');
              return;
            }
            case 'renew': {
              const issued = await renew(req.msg.value.csrPem);
              log().info({ serial: issued.serial, previousSerial: peer.serial, notAfter: issued.notAfter.toISOString() }, 'certificate renewed');
              send({ msg: { case: 'renewed', value: { certificatePem: issued.certPem, notAfter: timestampFromDate(issued.notAfter) } } });
              return;
            }
            case 'syncRanges': {
              // Handled in stream order: every delta sent before it is committed by now.
              const id = req.msg.value.exchangeId;
              const verdicts = await deps.reconcile.compareRanges(peer.id, syncRangesFromPb(req.msg.value));
              send({ msg: { case: 'syncVerdicts', value: syncVerdictsToPb(id, verdicts) } });
              return;
            }
            case 'syncEntries': {
              const id = req.msg.value.exchangeId;
              const repairs = await deps.reconcile.compareEntries(peer.id, syncEntriesFromPb(req.msg.value));
              const found = repairs.missing.length + repairs.differing.length + repairs.extra.length;
              if (found) log().warn({ missing: repairs.missing.length, differing: repairs.differing.length, extra: repairs.extra.length }, 'reconciliation: the stored state differs from the agent\'s; the agent sends repairs');
              send({ msg: { case: 'syncRepairs', value: syncRepairsToPb(id, repairs) } });
              return;
            }
            case 'status': {
              const status = deliveryStatusFromPb(req.msg.value, deps.clock());
              await deps.agents.setDeliveryStatus(peer.id, status);
              if (status.resyncNeeded) log().warn({ unqueuedChanges: status.unqueuedChanges, since: status.resyncSince }, 'agent queue full: resync needed');
              return;
            }
            default:
              throw new ControllerError('invalid_argument', 'empty or unknown message on the agent stream');
          }
        };

        // As read when the stream was authorised: a batch of an older stream committed since is
        // resent by the agent and skipped here, so an early value costs nothing but a resend.
        send({ msg: { case: 'welcome', value: { agentId: peer.id, committedSeq: BigInt(agent.lastSeq) } } });
        const own = deps.policy.forLabels(agent.labels);
        if (own) send(downMessageToPb({ type: 'policy', policy: own.policy }));
        void deps.dispatch.deliverPending(session); // commands queued while it was away, after the welcome

        const pipeline = createDeltaPipeline(() => deps.ingest.stats().pending);
        const read = async () => {
          for await (const req of wire.requests) {
            if (req.msg.case === 'deltas') {
              const n = req.msg.value.deltas.length;
              await pipeline.room(n);
              const { deltas, refusals } = await readDeltaBatch(peer.id, req.msg.value.deltas, deps, log());
              const work = commitDeltas(deltas, refusals);
              pipeline.add(work, n);
              work.catch(finish); // the stream ends at the first failure
              continue;
            }
            // Everything else in stream order: every delta sent before it is committed by now.
            await pipeline.drain();
            await handle(req);
          }
          await pipeline.drain();
        };
        read().then(() => finish(), finish);
        await done;
      } finally {
        open = false;
        clearTimeout(expiry);
        wire.signal.removeEventListener('abort', onAbort);
        detachHub();
        deps.presence.disconnected(peer.id, session.streamId);
        log().info({ streamId: session.streamId }, 'agent stream closed');
      }
    },
  };
}
