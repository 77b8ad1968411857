import { timestampDate } from '@bufbuild/protobuf/wkt';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { ServiceImpl } from '@connectrpc/connect';
import type { Logger } from 'pino';
import { deltaFromPb, policyToPb } from '../../proto/convert.js';
import { AgentService, type ConnectRequest, type ConnectResponseSchema } from '../../proto/gen/vigil/v1/agent_pb.js';
import { displayPath, type FileDelta } from '../../proto/model.js';
import type { AgentHub } from '../agent-hub.js';
import type { AlertDispatcher } from '../alerts/alert-dispatcher.js';
import type { Alert } from '../alerts/notifier.js';
import { ControllerError } from '../errors.js';
import { createMessageQueue } from '../message-queue.js';
import type { CurrentPolicy } from '../policy/current-policy.js';
import type { AgentStore, CommandStore, EventStore, NewAlert } from '../store/index.js';
import { requireAgent } from './peer-identity.js';

export type DownMessage = MessageInitShape<typeof ConnectResponseSchema>;

export interface ConnectDeps {
  readonly logger: Logger;
  readonly hub: AgentHub<DownMessage>;
  readonly policy: CurrentPolicy;
  readonly agents: AgentStore;
  readonly events: EventStore;
  readonly commands: CommandStore;
  readonly alerts: AlertDispatcher;
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
 * Connect: the agent's live stream. Up: hello, delta batches, scan reports. Down: welcome, acks
 * (only after commit), policy, commands. The agent's identity is its certificate, nothing else:
 * deltas are always stored under that identity.
 */
export function createConnectService(deps: ConnectDeps): Pick<ServiceImpl<typeof AgentService>, 'connect'> {
  return {
    async *connect(requests, ctx) {
      const peer = requireAgent(ctx);
      const agent = await deps.agents.get(peer.id);
      if (!agent) throw new ControllerError('unauthenticated', 'this agent is not enrolled here');
      const log = deps.logger.child({ component: 'stream', agentId: peer.id });
      let hostname = agent.hostname;
      const out = createMessageQueue<DownMessage>();
      const detach = deps.hub.attach({
        agentId: peer.id,
        connectedAt: new Date(),
        send: (m) => out.push(m),
        close: (reason) => out.fail(new ControllerError('unavailable', reason)),
      });
      ctx.signal.addEventListener('abort', () => out.close(), { once: true });

      const handle = async (req: ConnectRequest) => {
        switch (req.msg.case) {
          case 'hello': {
            const h = req.msg.value;
            hostname = h.hostname.slice(0, 255) || hostname;
            await deps.agents.markSeen(peer.id, { hostname, policyVersion: Number(h.policyVersion) });
            log.info({ hostname, policyVersion: Number(h.policyVersion), agentVersion: h.agentVersion }, 'agent connected');
            return;
          }
          case 'deltas': {
            const batch = req.msg.value.deltas;
            if (batch.length > deps.maxBatch) throw new ControllerError('invalid_argument', `batch of ${batch.length} deltas exceeds ${deps.maxBatch}`);
            const deltas = batch.map(deltaFromPb);
            const res = await deps.events.ingest(peer.id, deltas, deps.policy.alertRuleFor);
            out.push({ msg: { case: 'ack', value: { upToSeq: BigInt(res.committedSeq) } } });
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
        const policy = deps.policy.get();
        if (policy) out.push({ msg: { case: 'policy', value: policyToPb(policy) } });
        yield* out;
      } finally {
        detach();
        out.close();
        void reader;
        log.info('agent stream closed');
      }
    },
  };
}
