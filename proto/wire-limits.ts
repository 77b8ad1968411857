/**
 * Sizes both sides of the agent stream hold to. The controller reads at most
 * MAX_AGENT_MESSAGE_BYTES per message on the agent stream, so that no agent's message takes long
 * to decode (protobuf decoding costs a few microseconds per delta: a message of that size holds at
 * most ~28,000 of the smallest deltas, ~0.1 s, where the 16 MiB that admin calls may send would
 * hold 1.8 million, ~6 s with every other agent's acks waiting). The agent cuts its batches by
 * bytes as well as by count, well under that.
 */
export const MAX_AGENT_MESSAGE_BYTES = 256 * 1024;

/** What the agent aims a delta batch at, at most (the largest delta, ~9 KiB with a 4 KiB path and a 4 KiB symlink target, always fits). */
export const AGENT_BATCH_BYTES = 160 * 1024;

/** A generous bound on a delta's encoded size (path, symlink target and the fixed fields). */
export function deltaSizeBound(d: {
  readonly path: Uint8Array;
  readonly state: { readonly symlinkTarget: Uint8Array | null; readonly error: string | null; readonly attrValues?: Uint8Array | null } | null;
}): number {
  return 256 + d.path.length + (d.state?.symlinkTarget?.length ?? 0) + (d.state?.error?.length ?? 0) + (d.state?.attrValues?.length ?? 0);
}
