import { randomUUID } from 'node:crypto';
import { timestampDate, timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
import type { Logger } from 'pino';
import { ContractError, DeltaContentError, deltaFromPb, policyToPb } from '../../proto/convert.js';
import { ChangeKind, type FileDelta as PbFileDelta } from '../../proto/gen/vigil/v1/types_pb.js';
import { AgentService, type ConnectRequest, type ConnectResponseSchema } from '../../proto/gen/vigil/v1/agent_pb.js';
import { syncEntriesFromPb, syncRangesFromPb, syncRepairsToPb, syncVerdictsToPb } from '../../proto/sync-messages.js';
import type { ReconcileResponder } from '../reconcile/reconcile-responder.js';
import { deliveryStatusFromPb } from './delivery-status.js';
import { displayPath, type FileDelta } from '../../core/model.js';
import { agentSpiffeId, spkiFingerprint, verifyCsr, type CertificateAuthority } from '../../pki/index.js';
import type { AgentHub } from '../agent-hub.js';
import type { AlertDispatcher } from '../alerts/alert-dispatcher.js';
import type { Alert } from '../alerts/notifier.js';
import { ControllerError } from '../errors.js';
import type { Fanout } from '../fanout.js';
import { createMessageQueue } from '../message-queue.js';
import type { CurrentPolicy } from '../policy/current-policy.js';
import type { AgentRecord, AgentStore, CertificateStatus, CertificateStore, Clock, CommandStore, DeltaRefusal, EventStore, NewAlert } from '../store/index.js';
import { requireAgent, type PeerIdentity } from './peer-identity.js';

export type DownMessage = MessageInitShape<typeof ConnectResponseSchema>;

export interface ConnectDeps {
  readonly logger: Logger;
  readonly clock: Clock;
  readonly hub: AgentHub<DownMessage>;
  readonly policy: CurrentPolicy;
  readonly agents: AgentStore;
  readonly certificates: CertificateStore;
  readonly events: EventStore;
  readonly reconcile: ReconcileResponder;
  readonly commands: CommandStore;
  readonly alerts: AlertDispatcher;
  readonly fanout: Fanout;
  readonly ca: CertificateAuthority;
  readonly agentCertLifetimeMs: number;
  /** Most deltas accepted in one batch. */
  readonly maxBatch: number;
}

function toAlerts(newAlerts: readonly NewAlert[], stored: readonly FileDelta[], hostname: string): Alert[] {
  const bySeq = new Map(stored.map((d) => [d.seq, d]));
  return newAlerts.flatMap((a) => {
    const d = bySeq.get(a.seq);
    if (!d) return [];
    return [
      {
        id: a.id,
        agentId: a.agentId,
        hostname,
        rule: a.rule,
        seq: a.seq,
        kind: d.kind,
        path: displayPath(d.path),
        sha256: d.state?.sha256?.toString('hex') ?? null,
        detectedAt: d.detectedAt,
      },
    ];
  });
}

/**
 * The checks every agent stream passes before anything is read: the peer certificate is one this
 * controller issued to this very agent, neither it nor the agent is revoked. Run per stream, on
 * the certificate of this connection, so a resumed TLS session is judged like a new one.
 */
export async function authoriseAgentStream(
  peer: PeerIdentity,
  deps: Pick<ConnectDeps, 'agents' | 'certificates' | 'clock'>,
): Promise<{ agent: AgentRecord; cert: CertificateStatus }> {
  const [agent, cert] = await Promise.all([deps.agents.get(peer.id), deps.certificates.find(peer.serial)]);
  if (!agent) throw new ControllerError('unauthenticated', 'this agent is not enrolled here');
  if (!cert || cert.agentId !== agent.id) throw new ControllerError('unauthenticated', 'this certificate was not issued to this agent by this controller');
  if (agent.revokedAt || cert.revokedAt) throw new ControllerError('permission_denied', `agent ${agent.id} was revoked${agent.revokeReason ? `: ${agent.revokeReason}` : ''}; enrol it again`);
  if (cert.notAfter.getTime() <= deps.clock().getTime()) throw new ControllerError('unauthenticated', 'the agent certificate expired; enrol again');
  return { agent, cert };
}

const MAX_TIMER_MS = 2 ** 31 - 1;
/** A renewal before this share of the certificate's lifetime is refused (agents renew at 70-90 %). */
const EARLIEST_RENEWAL = 0.5;

/**
 * Connect: the agent's live stream. Up: hello, delta batches, scan reports, renewals. Down: welcome,
 * acks (only after commit), policy, commands, renewed certificates. The agent's identity is its
 * certificate, nothing else: deltas are always stored under that identity.
 */
export function createConnectService(deps: ConnectDeps): Pick<ServiceImpl<typeof AgentService>, 'connect'> {
  return {
    async *connect(requests, ctx: HandlerContext) {
      const peer = requireAgent(ctx);
      const { agent, cert } = await authoriseAgentStream(peer, deps);
      const log = deps.logger.child({ component: 'stream', agentId: peer.id });
      let renewed = false;
      let hostname = agent.hostname;
      const streamId = randomUUID();
      const out = createMessageQueue<DownMessage>();
      const detach = deps.hub.attach({
        agentId: peer.id,
        streamId,
        labels: agent.labels,
        remoteAddress: peer.remoteAddress,
        connectedAt: deps.clock(),
        send: (m) => out.push(m),
        close: (err) => out.fail(err),
      });
      ctx.signal.addEventListener('abort', () => out.close(), { once: true });
      // A revocation that committed between the check above and attach() found no session to
      // cut: check once more now that the session is visible.
      try {
        await authoriseAgentStream(peer, deps);
      } catch (err) {
        detach();
        throw err;
      }
      // The stream ends when the certificate it was opened with expires.
      const expiry = setTimeout(
        () => out.fail(new ControllerError('unauthenticated', 'the agent certificate expired; enrol again')),
        Math.min(Math.max(0, cert.notAfter.getTime() - deps.clock().getTime()), MAX_TIMER_MS),
      );
      void deps.fanout.publish({ type: 'stream', agentId: peer.id, streamId, remote: peer.remoteAddress }).catch((err: unknown) => log.warn({ err }, 'fan-out publish failed'));

      const renew = async (csrPem: string) => {
        // Re-read: a revocation may have landed since the stream opened.
        const { cert: current } = await authoriseAgentStream(peer, deps);
        if (renewed) throw new ControllerError('failed_precondition', 'one renewal per stream: reconnect with the new certificate');
        const life = current.notAfter.getTime() - current.notBefore.getTime();
        if (deps.clock().getTime() - current.notBefore.getTime() < life * EARLIEST_RENEWAL) {
          throw new ControllerError('failed_precondition', 'too early to renew this certificate');
        }
        renewed = true;
        const publicKeyPem = verifyCsr(csrPem);
        const spiffeId = agentSpiffeId(deps.ca.trustDomain, peer.id);
        const issued = deps.ca.issueClient({ publicKeyPem, spiffeId, lifetimeMs: deps.agentCertLifetimeMs });
        await deps.certificates.record({
          serial: issued.serial,
          agentId: peer.id,
          subject: spiffeId,
          keyFingerprint: spkiFingerprint(publicKeyPem),
          tokenId: null,
          notBefore: issued.notBefore,
          notAfter: issued.notAfter,
        });
        log.info({ serial: issued.serial, previousSerial: peer.serial, notAfter: issued.notAfter.toISOString() }, 'certificate renewed');
        out.push({ msg: { case: 'renewed', value: { certificatePem: issued.certPem, notAfter: timestampFromDate(issued.notAfter) } } });
      };

      /**
       * A batch's deltas, each mapped on its own: one whose content cannot be taken is refused alone
       * (docs/delivery.md, "Refused deltas"). What cannot be accounted for (a batch too large, a seq
       * out of range) refuses the whole message: recorded on the agent as "delivery blocked".
       */
      const readBatch = async (batch: readonly PbFileDelta[]) => {
        const deltas: FileDelta[] = [];
        const refusals: DeltaRefusal[] = [];
        try {
          if (batch.length > deps.maxBatch) throw new ContractError(`batch of ${batch.length} deltas exceeds ${deps.maxBatch}`);
          // One seq, one delta: twice in a batch could be stored once and refused once.
          const seqs = new Set(batch.map((d) => d.seq));
          if (seqs.size !== batch.length) throw new ContractError('a batch holds the same seq twice');
          for (const pb of batch) {
            try {
              deltas.push(deltaFromPb(pb));
            } catch (err) {
              if (!(err instanceof DeltaContentError)) throw err;
              refusals.push({ seq: err.seq, field: err.field, reason: err.reason, path: pb.path.length ? Buffer.from(pb.path.subarray(0, 4096)) : null, kind: ChangeKind[pb.kind]?.toLowerCase() ?? String(pb.kind) });
            }
          }
        } catch (err) {
          const reason = err instanceof Error ? err.message : String(err);
          try {
            // The first seq the controller still waits for: nothing from there on is delivered.
            const seq = (await deps.events.committedSeq(peer.id)) + 1;
            log.error({ seq, reason }, 'delta message refused whole: delivery from this agent is blocked until it sends one the controller accepts');
            await deps.agents.setDeliveryBlocked(peer.id, { seq, reason });
          } catch (recordErr) {
            log.error({ err: recordErr, reason }, 'delta message refused whole; recording it on the agent failed');
          }
          throw err;
        }
        return { deltas, refusals };
      };

      const handle = async (req: ConnectRequest) => {
        switch (req.msg.case) {
          case 'hello': {
            const h = req.msg.value;
            hostname = h.hostname.slice(0, 255) || hostname;
            await deps.agents.markSeen(peer.id, { hostname, policyVersion: Number(h.policyVersion) });
            log.info({ hostname, policyVersion: Number(h.policyVersion), agentVersion: h.agentVersion, remote: peer.remoteAddress }, 'agent connected');
            return;
          }
          case 'deltas': {
            const batch = req.msg.value.deltas;
            const { deltas, refusals } = await readBatch(batch);
            const own = deps.policy.forLabels(agent.labels);
            const res = await deps.events.ingest(peer.id, deltas, own ? own.alertRuleFor : () => null, refusals);
            if (res.revoked) throw new ControllerError('permission_denied', `agent ${peer.id} was revoked; enrol it again`);
            for (const r of res.refused) {
              log.error({ seq: r.seq, field: r.field, reason: r.reason, kind: r.kind, path: r.path ? displayPath(r.path) : null }, 'delta refused: recorded as refused and acked, not stored');
            }
            out.push({ msg: { case: 'ack', value: { upToSeq: BigInt(res.committedSeq), refused: res.refused.map((r) => ({ seq: BigInt(r.seq), field: r.field, reason: r.reason, code: 'INVALID_ARGUMENT' })) } } });
            for (const d of res.stored) {
              log.info({ seq: d.seq, kind: d.kind, path: displayPath(d.path), source: d.source, sha256: d.state?.sha256?.toString('hex') ?? null }, 'change recorded');
            }
            if (res.alerts.length) deps.alerts.enqueue(toAlerts(res.alerts, res.stored, hostname));
            return;
          }
          case 'scanReport': {
            const r = req.msg.value;
            const summary = {
              filesScanned: Number(r.filesScanned),
              changes: Number(r.changes),
              errors: Number(r.errors),
              startedAt: r.startedAt ? timestampDate(r.startedAt).toISOString() : null,
              finishedAt: r.finishedAt ? timestampDate(r.finishedAt).toISOString() : null,
            };
            if (r.commandId) await deps.commands.complete(r.commandId, peer.id, summary);
            if (r.policyVersion > 0n) await deps.agents.markSeen(peer.id, { policyVersion: Number(r.policyVersion) });
            log.info({ commandId: r.commandId || null, policyVersion: Number(r.policyVersion), ...summary }, 'scan report');
            return;
          }
          case 'renew':
            return renew(req.msg.value.csrPem);
          case 'syncRanges': {
            // Handled in stream order: every delta sent before it is committed by now.
            const id = req.msg.value.exchangeId;
            const verdicts = await deps.reconcile.compareRanges(peer.id, syncRangesFromPb(req.msg.value));
            out.push({ msg: { case: 'syncVerdicts', value: syncVerdictsToPb(id, verdicts) } });
            return;
          }
          case 'syncEntries': {
            const id = req.msg.value.exchangeId;
            const repairs = await deps.reconcile.compareEntries(peer.id, syncEntriesFromPb(req.msg.value));
            const found = repairs.missing.length + repairs.differing.length + repairs.extra.length;
            if (found) log.warn({ missing: repairs.missing.length, differing: repairs.differing.length, extra: repairs.extra.length }, 'reconciliation: the stored state differs from the agent\'s; the agent sends repairs');
            out.push({ msg: { case: 'syncRepairs', value: syncRepairsToPb(id, repairs) } });
            return;
          }
          case 'status': {
            const status = deliveryStatusFromPb(req.msg.value, deps.clock());
            await deps.agents.setDeliveryStatus(peer.id, status);
            if (status.resyncNeeded) log.warn({ unqueuedChanges: status.unqueuedChanges, since: status.resyncSince }, 'agent queue full: resync needed');
            return;
          }
          default:
            throw new ControllerError('invalid_argument', 'empty or unknown message on the agent stream');
        }
      };

      const reader = (async () => {
        for await (const req of requests) await handle(req);
      })().then(
        () => out.close(),
        (err: unknown) => out.fail(err),
      );

      try {
        out.push({ msg: { case: 'welcome', value: { agentId: peer.id, committedSeq: BigInt(await deps.events.committedSeq(peer.id)) } } });
        const own = deps.policy.forLabels(agent.labels);
        if (own) out.push({ msg: { case: 'policy', value: policyToPb(own.policy) } });
        yield* out;
      } finally {
        clearTimeout(expiry);
        detach();
        out.close();
        void reader;
        log.info({ streamId }, 'agent stream closed');
      }
    },
  };
}
