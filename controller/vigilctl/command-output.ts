import type { CommandStatus, GetCommandGroupResponse } from '../../proto/gen/vigil/v1/admin_pb.js';
import { ts } from './output.js';

/** The JSON shape of one agent's command in `vigilctl commands ls/show --json` (docs/commands.md). */
export function commandJson(c: CommandStatus) {
  return {
    id: c.id,
    groupId: c.groupId,
    agentId: c.agentId,
    kind: c.kind,
    state: c.state,
    createdAt: ts(c.createdAt),
    createdBy: c.createdBy,
    expiresAt: ts(c.expiresAt),
    deliveredAt: ts(c.deliveredAt),
    completedAt: ts(c.completedAt),
    failure: c.failure || null,
    scan: c.scan ? { filesScanned: Number(c.scan.filesScanned), changes: Number(c.scan.changes), errors: Number(c.scan.errors), startedAt: ts(c.scan.startedAt), finishedAt: ts(c.scan.finishedAt) } : null,
  };
}

/** What became of one agent's command, in a few words. */
export function commandOutcome(c: CommandStatus): string {
  switch (c.state) {
    case 'done':
      return c.scan ? `scanned ${c.scan.filesScanned} paths, ${c.scan.changes} change(s), ${c.scan.errors} error(s)` : 'done';
    case 'failed':
      return `failed: ${c.failure || 'no reason given'}`;
    case 'expired':
      return `expired: no report by ${ts(c.expiresAt) ?? '-'}`;
    case 'delivered':
      return `delivered${c.deliveredAt ? ` ${ts(c.deliveredAt)}` : ''}, no report yet`;
    default:
      return `pending (agent not connected) until ${ts(c.expiresAt) ?? '-'}`;
  }
}

export type GroupCounts = Pick<GetCommandGroupResponse, 'pending' | 'delivered' | 'done' | 'failed' | 'expired'>;

export function countsJson(g: GroupCounts) {
  return { pending: Number(g.pending), delivered: Number(g.delivered), done: Number(g.done), failed: Number(g.failed), expired: Number(g.expired) };
}

/** "12 agents: 3 pending, 1 delivered, 8 done, 0 failed, 0 expired". */
export function countsText(g: GroupCounts): string {
  const c = countsJson(g);
  const total = c.pending + c.delivered + c.done + c.failed + c.expired;
  return `${total} agent${total === 1 ? '' : 's'}: ${c.pending} pending, ${c.delivered} delivered, ${c.done} done, ${c.failed} failed, ${c.expired} expired`;
}
