import { create } from '@bufbuild/protobuf';
import { timestampDate, timestampFromDate, type Timestamp } from '@bufbuild/protobuf/wkt';
import { AgentStatusSchema, type AgentStatus } from '../../proto/gen/vigil/v1/agent_pb.js';
import type { DeliveryStatus } from '../store/index.js';

const iso = (t: Timestamp | undefined) => (t ? timestampDate(t).toISOString() : null);
const stamp = (s: string | null) => (s ? timestampFromDate(new Date(s)) : undefined);
/** Gap records and scheduled-only roots kept per agent; the agent writes them, so they are capped. */
const MAX_ITEMS = 50;
const MAX_TEXT = 4096;

/** An agent's AgentStatus as the controller stores it (agents.delivery_status). */
export function deliveryStatusFromPb(s: AgentStatus, reportedAt: Date): DeliveryStatus {
  const text = (v: string) => v.slice(0, MAX_TEXT);
  return {
    reportedAt: reportedAt.toISOString(),
    resyncNeeded: s.resyncNeeded,
    resyncSince: iso(s.resyncSince),
    unqueuedChanges: Number(s.unqueuedChanges),
    queueLength: Number(s.queueLength),
    queueBytes: Number(s.queueBytes),
    queueLimitBytes: Number(s.queueLimitBytes),
    gaps: s.gaps.slice(-MAX_ITEMS).map((g) => ({ at: iso(g.at) ?? '', root: text(g.root), reason: text(g.reason), detail: text(g.detail), changesFound: Number(g.changesFound) })),
    gapsTotal: Number(s.gapsTotal),
    scheduledOnly: s.scheduledOnly.slice(0, MAX_ITEMS).map(text),
    scheduledOnlyTotal: Math.max(Number(s.scheduledOnlyTotal), s.scheduledOnly.length),
    lastReconcileAt: iso(s.lastReconcileAt),
    lastReconcileRepairs: Number(s.lastReconcileRepairs),
  };
}

/** The stored status back in wire form, for vigilctl. */
export function deliveryStatusToPb(d: DeliveryStatus): AgentStatus {
  return create(AgentStatusSchema, {
    resyncNeeded: d.resyncNeeded,
    resyncSince: stamp(d.resyncSince),
    unqueuedChanges: BigInt(d.unqueuedChanges),
    queueLength: BigInt(d.queueLength),
    queueBytes: BigInt(d.queueBytes),
    queueLimitBytes: BigInt(d.queueLimitBytes),
    gaps: d.gaps.map((g) => ({ at: stamp(g.at), root: g.root, reason: g.reason, detail: g.detail, changesFound: BigInt(g.changesFound) })),
    gapsTotal: BigInt(d.gapsTotal),
    scheduledOnly: [...d.scheduledOnly],
    scheduledOnlyTotal: BigInt(d.scheduledOnlyTotal ?? d.scheduledOnly.length),
    lastReconcileAt: stamp(d.lastReconcileAt),
    lastReconcileRepairs: BigInt(d.lastReconcileRepairs),
  });
}
