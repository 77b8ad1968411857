import type { FileDelta, Policy } from '../../core/model.js';
import type { ScanReport } from '../../core/scan-summary.js';
import type { Leaf, RangeCompare, Repairs, Verdict } from '../../core/sync-types.js';
import type { GapRecord } from '../store/agent-meta.js';
import type { Resync } from '../store/outbox.js';

/**
 * The agent's side of Connect as plain domain messages (agent.proto's ConnectRequest and
 * ConnectResponse). Only agent/transport maps them to and from the wire.
 */


/** Delivery and watch status (vigilctl agents show): the queue, resync, gaps, unwatched roots. */
export interface StatusReport {
  readonly resync: Resync | null;
  readonly queueLength: number;
  readonly queueBytes: number;
  readonly queueLimitBytes: number;
  readonly gaps: readonly GapRecord[];
  readonly gapsTotal: number;
  /** The first few, and how many in all. */
  readonly scheduledOnly: readonly string[];
  readonly scheduledOnlyTotal: number;
  readonly lastReconcile: { readonly at: Date; readonly repairs: number } | null;
}

export type UpMessage =
  | { readonly type: 'hello'; readonly hostname: string; readonly agentVersion: string; readonly policyVersion: number }
  | { readonly type: 'deltas'; readonly deltas: readonly FileDelta[] }
  | { readonly type: 'status'; readonly status: StatusReport }
  | { readonly type: 'scanReport'; readonly report: ScanReport }
  | { readonly type: 'renew'; readonly csrPem: string }
  | { readonly type: 'syncRanges'; readonly exchangeId: bigint; readonly ranges: readonly RangeCompare[] }
  | { readonly type: 'syncEntries'; readonly exchangeId: bigint; readonly leaves: readonly Leaf[] };

/** A delta of an acked batch the controller refused for its content (recorded there, never resent). */
export interface AckRefusal {
  readonly seq: number;
  readonly code: string;
  readonly field: string;
  readonly reason: string;
}

export type AgentCommand = { readonly kind: 'rescan'; readonly fullHash: boolean } | { readonly kind: 'unknown' };

export type DownMessage =
  | { readonly type: 'welcome'; readonly agentId: string; readonly committedSeq: number }
  | { readonly type: 'ack'; readonly upToSeq: number; readonly refused: readonly AckRefusal[] }
  | { readonly type: 'policy'; readonly policy: Policy }
  | { readonly type: 'command'; readonly id: string; readonly command: AgentCommand }
  | { readonly type: 'renewed'; readonly certificatePem: string; readonly notAfter: Date | null }
  | { readonly type: 'syncVerdicts'; readonly exchangeId: bigint; readonly verdicts: readonly Verdict[] }
  | { readonly type: 'syncRepairs'; readonly exchangeId: bigint; readonly repairs: Repairs };
