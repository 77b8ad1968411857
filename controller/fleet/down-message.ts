import type { Policy } from '../../core/model.js';

/** A command the controller sends an agent (`vigilctl rescan`). */
export type AgentCommand = { readonly id: string; readonly kind: 'rescan'; readonly fullHash: boolean };

/**
 * What the rest of the controller sends down a connected agent's stream, through the hub. Only the
 * stream service maps it to the wire (services/stream/down-message-pb.ts); the stream's own replies
 * (welcome, acks, renewed certificates, reconciliation) never pass through the hub.
 */
export type DownMessage =
  /** The part of the policy in force that the agent's labels select. */
  | { readonly type: 'policy'; readonly policy: Policy }
  | { readonly type: 'command'; readonly command: AgentCommand };
