import type { MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { ServiceImpl } from '@connectrpc/connect';
import type { Logger } from 'pino';
import type { AdminService, AgentSchema } from '../../../proto/gen/vigil/v1/admin_pb.js';
import { ControllerError } from '../../errors.js';
import type { AgentHub } from '../../fleet/agent-hub.js';
import { isLive } from '../../fleet/presence.js';
import type { Revocations } from '../../fleet/revocations.js';
import type { AgentRecord, AgentStore, AuditStore, Clock, EventStore } from '../../store/index.js';
import { deliveryStatusToPb } from '../delivery-status.js';
import { requireOperator } from '../peer-identity.js';

export interface AgentsDeps {
  readonly logger: Logger;
  readonly clock: Clock;
  readonly hub: AgentHub;
  readonly agents: AgentStore;
  readonly events: EventStore;
  readonly revocations: Revocations;
  readonly audit: AuditStore;
}

/** Refused deltas `agents show` lists (refused_count says how many in all). */
const RECENT_REFUSALS = 10;

/** Connected to any replica: held here, or by a replica whose heartbeat is fresh (fleet/presence.ts). */
function connectionOf(a: AgentRecord, here: boolean, now: Date): { connected: boolean; replica: string } {
  if (here) return { connected: true, replica: a.connection?.replicaName ?? '' };
  return isLive(a.connection, now) ? { connected: true, replica: a.connection!.replicaName } : { connected: false, replica: '' };
}

function agentToPb(a: AgentRecord, here: boolean, nowDate: Date): MessageInitShape<typeof AgentSchema> {
  const now = nowDate.getTime();
  const { connected, replica } = connectionOf(a, here, nowDate);
  return {
    id: a.id,
    hostname: a.hostname,
    connected,
    replica,
    enrolledAt: timestampFromDate(a.enrolledAt),
    lastSeenAt: a.lastSeenAt ? timestampFromDate(a.lastSeenAt) : undefined,
    lastSeq: BigInt(a.lastSeq),
    refreshedCount: BigInt(a.refreshedCount),
    refusedCount: BigInt(a.refusedCount),
    ...(a.deliveryBlocked ? { deliveryBlocked: { seq: BigInt(a.deliveryBlocked.seq), reason: a.deliveryBlocked.reason, at: timestampFromDate(new Date(a.deliveryBlocked.at)) } } : {}),
    policyVersion: BigInt(a.policyVersion),
    labels: a.labels,
    certNotAfter: a.certNotAfter ? timestampFromDate(a.certNotAfter) : undefined,
    revokedAt: a.revokedAt ? timestampFromDate(a.revokedAt) : undefined,
    status: a.revokedAt ? 'revoked' : a.certNotAfter && a.certNotAfter.getTime() <= now ? 'certificate_expired' : connected ? 'connected' : 'disconnected',
    ...(a.deliveryStatus ? { delivery: deliveryStatusToPb(a.deliveryStatus), deliveryReportedAt: timestampFromDate(new Date(a.deliveryStatus.reportedAt)) } : {}),
  };
}

/** `vigilctl agents`: the fleet as enrolled, who is connected to which replica, and revocation. */
export function agentMethods(deps: AgentsDeps): Pick<ServiceImpl<typeof AdminService>, 'listAgents' | 'getAgent' | 'revokeAgent'> {
  const log = deps.logger.child({ component: 'admin' });
  return {
    async listAgents(_req, ctx) {
      requireOperator(ctx, 'viewer');
      const connected = new Set(deps.hub.ids());
      const agents = await deps.agents.list();
      const now = deps.clock();
      return { agents: agents.map((a) => agentToPb(a, connected.has(a.id), now)) };
    },

    async getAgent(req, ctx) {
      requireOperator(ctx, 'viewer');
      const a = await deps.agents.get(req.agentId);
      if (!a) throw new ControllerError('not_found', `no agent ${req.agentId}`);
      const connected = deps.hub.get(a.id) !== undefined;
      const [eventsStored, refusals] = await Promise.all([deps.events.countFor(a.id), deps.events.refusals(a.id, RECENT_REFUSALS)]);
      return {
        agent: agentToPb(a, connected, deps.clock()),
        eventsStored: BigInt(eventsStored),
        refused: refusals.recent.map((r) => ({ seq: BigInt(r.seq), field: r.field, reason: r.reason, path: r.path ?? new Uint8Array(0), kind: r.kind ?? '', refusedAt: timestampFromDate(r.refusedAt) })),
      };
    },

    async revokeAgent(req, ctx) {
      const op = requireOperator(ctx, 'admin');
      const { reason } = await deps.revocations.revoke(req.agentId, req.reason);
      await deps.audit.record({ actor: op.spiffeId, action: 'agents.revoke', target: req.agentId, details: { reason } });
      log.info({ actor: op.spiffeId, agentId: req.agentId }, 'agent revoked');
      return {};
    },
  };
}
