import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { AgentStatusSchema, type AgentStatus } from '../proto/gen/vigil/v1/agent_pb.js';
import type { LocalStore } from './store/local-store.js';

/** Scheduled-only directories sent at most (the count is sent whole): past a watch limit there may be thousands. */
export const MAX_SCHEDULED_ONLY = 50;

/**
 * The agent's delivery and watch status as sent up the stream (AgentStatus): the resync flag, the
 * queue, the recent gap records and the roots only scheduled scans cover.
 */
export function agentStatusToPb(
  store: Pick<LocalStore, 'resync' | 'queueLength' | 'queueBytes' | 'queueLimitBytes' | 'gaps' | 'lastReconcile'>,
  scheduledOnly: readonly string[],
): AgentStatus {
  const resync = store.resync();
  const gaps = store.gaps();
  const reconciled = store.lastReconcile();
  return create(AgentStatusSchema, {
    resyncNeeded: resync !== null,
    ...(resync ? { resyncSince: timestampFromDate(resync.since) } : {}),
    unqueuedChanges: BigInt(resync?.unqueued ?? 0),
    queueLength: BigInt(store.queueLength()),
    queueBytes: BigInt(store.queueBytes()),
    queueLimitBytes: BigInt(store.queueLimitBytes()),
    gaps: gaps.recent.map((g) => ({ at: timestampFromDate(g.at), root: g.root, reason: g.reason, detail: g.detail, changesFound: BigInt(g.changesFound) })),
    gapsTotal: BigInt(gaps.total),
    scheduledOnly: scheduledOnly.slice(0, MAX_SCHEDULED_ONLY),
    scheduledOnlyTotal: BigInt(scheduledOnly.length),
    ...(reconciled ? { lastReconcileAt: timestampFromDate(reconciled.at), lastReconcileRepairs: BigInt(reconciled.repairs) } : {}),
  });
}
