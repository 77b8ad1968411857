import { create } from '@bufbuild/protobuf';
import { timestampDate, timestampFromDate } from '@bufbuild/protobuf/wkt';
import { deltaToPb, policyFromPb } from '../../proto/convert.js';
import { AgentStatusSchema, ConnectRequestSchema, type ConnectRequest, type ConnectResponse } from '../../proto/gen/vigil/v1/agent_pb.js';
import { scanReportToPb } from '../../proto/scan-summary.js';
import { syncEntriesToPb, syncRangesToPb, syncRepairsFromPb, syncVerdictsFromPb } from '../../proto/sync-messages.js';
import type { DownMessage, StatusReport, UpMessage } from './stream-messages.js';

function statusToPb(s: StatusReport) {
  return create(AgentStatusSchema, {
    resyncNeeded: s.resync !== null,
    ...(s.resync ? { resyncSince: timestampFromDate(s.resync.since) } : {}),
    unqueuedChanges: BigInt(s.resync?.unqueued ?? 0),
    queueLength: BigInt(s.queueLength),
    queueBytes: BigInt(s.queueBytes),
    queueLimitBytes: BigInt(s.queueLimitBytes),
    gaps: s.gaps.map((g) => ({ at: timestampFromDate(g.at), root: g.root, reason: g.reason, detail: g.detail, changesFound: BigInt(g.changesFound) })),
    gapsTotal: BigInt(s.gapsTotal),
    scheduledOnly: [...s.scheduledOnly],
    scheduledOnlyTotal: BigInt(s.scheduledOnlyTotal),
    ...(s.lastReconcile ? { lastReconcileAt: timestampFromDate(s.lastReconcile.at), lastReconcileRepairs: BigInt(s.lastReconcile.repairs) } : {}),
  });
}

/** An up message as the wire's ConnectRequest. */
export function upToPb(m: UpMessage): ConnectRequest {
  switch (m.type) {
    case 'hello':
      return create(ConnectRequestSchema, { msg: { case: 'hello', value: { hostname: m.hostname, agentVersion: m.agentVersion, policyVersion: BigInt(m.policyVersion) } } });
    case 'deltas':
      return create(ConnectRequestSchema, { msg: { case: 'deltas', value: { deltas: m.deltas.map(deltaToPb) } } });
    case 'status':
      return create(ConnectRequestSchema, { msg: { case: 'status', value: statusToPb(m.status) } });
    case 'scanReport':
      return create(ConnectRequestSchema, { msg: { case: 'scanReport', value: scanReportToPb(m.report) } });
    case 'renew':
      return create(ConnectRequestSchema, { msg: { case: 'renew', value: { csrPem: m.csrPem } } });
    case 'syncRanges':
      return create(ConnectRequestSchema, { msg: { case: 'syncRanges', value: syncRangesToPb(m.exchangeId, [...m.ranges]) } });
    case 'syncEntries':
      return create(ConnectRequestSchema, { msg: { case: 'syncEntries', value: syncEntriesToPb(m.exchangeId, [...m.leaves]) } });
  }
}

/**
 * A ConnectResponse as a domain message; null for an empty or unknown one (a newer controller's
 * message this agent does not know is skipped). Throws ContractError on a malformed one.
 */
export function downFromPb(m: ConnectResponse): DownMessage | null {
  switch (m.msg.case) {
    case 'welcome':
      return { type: 'welcome', agentId: m.msg.value.agentId, committedSeq: Number(m.msg.value.committedSeq) };
    case 'ack':
      return {
        type: 'ack',
        upToSeq: Number(m.msg.value.upToSeq),
        refused: m.msg.value.refused.map((r) => ({ seq: Number(r.seq), code: r.code, field: r.field, reason: r.reason })),
      };
    case 'policy':
      return { type: 'policy', policy: policyFromPb(m.msg.value) };
    case 'command': {
      const cmd = m.msg.value;
      return { type: 'command', id: cmd.id, command: cmd.kind.case === 'rescan' ? { kind: 'rescan', fullHash: cmd.kind.value.fullHash } : { kind: 'unknown' } };
    }
    case 'renewed':
      return { type: 'renewed', certificatePem: m.msg.value.certificatePem, notAfter: m.msg.value.notAfter ? timestampDate(m.msg.value.notAfter) : null };
    case 'syncVerdicts':
      return { type: 'syncVerdicts', exchangeId: m.msg.value.exchangeId, verdicts: syncVerdictsFromPb(m.msg.value) };
    case 'syncRepairs':
      return { type: 'syncRepairs', exchangeId: m.msg.value.exchangeId, repairs: syncRepairsFromPb(m.msg.value) };
    default:
      return null;
  }
}
