import type { Logger } from 'pino';
import type { FileDelta } from '../../../core/model.js';
import { ContractError, DeltaContentError, deltaFromPb } from '../../../proto/convert.js';
import { ChangeKind, type FileDelta as PbFileDelta } from '../../../proto/gen/vigil/v1/types_pb.js';
import type { AgentStore, DeltaRefusal, EventStore } from '../../store/index.js';

export interface DeltaBatchDeps {
  readonly agents: AgentStore;
  readonly events: EventStore;
  /** Most deltas accepted in one batch. */
  readonly maxBatch: number;
}

/**
 * A batch's deltas, each mapped on its own: one whose content cannot be taken is refused alone
 * (docs/delivery.md, "Refused deltas"). What cannot be accounted for (a batch too large, a seq
 * twice) refuses the whole message, recorded on the agent as "delivery blocked", and throws.
 */
export async function readDeltaBatch(
  agentId: string,
  batch: readonly PbFileDelta[],
  deps: DeltaBatchDeps,
  log: Logger,
): Promise<{ deltas: FileDelta[]; refusals: DeltaRefusal[] }> {
  const deltas: FileDelta[] = [];
  const refusals: DeltaRefusal[] = [];
  try {
    if (batch.length > deps.maxBatch) throw new ContractError(`batch of ${batch.length} deltas exceeds ${deps.maxBatch}`);
    // One seq, one delta: twice in a batch could be stored once and refused once. An agent sends
    // its seqs rising; only a batch that does not is checked with a set.
    let rising = true;
    for (let i = 1; i < batch.length && rising; i++) rising = batch[i]!.seq > batch[i - 1]!.seq;
    if (!rising && new Set(batch.map((d) => d.seq)).size !== batch.length) throw new ContractError('a batch holds the same seq twice');
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
      const seq = (await deps.events.committedSeq(agentId)) + 1;
      log.error({ seq, reason }, 'delta message refused whole: delivery from this agent is blocked until it sends one the controller accepts');
      await deps.agents.setDeliveryBlocked(agentId, { seq, reason });
    } catch (recordErr) {
      log.error({ err: recordErr, reason }, 'delta message refused whole; recording it on the agent failed');
    }
    throw err;
  }
  return { deltas, refusals };
}
