import type { FileDelta } from '../../core/model.js';
import { AGENT_BATCH_BYTES, deltaSizeBound } from '../../proto/wire-limits.js';
import type { Outbox } from '../store/outbox.js';

/**
 * Sends the outbox in order on one stream: from the controller's committed seq on, in batches
 * cut by count and by bytes, with a bound on deltas sent and not yet acked.
 */
export interface OutboxPump {
  /** The controller's welcome: everything up to committedSeq is delivered; sending starts after it. */
  start(committedSeq: number): void;
  /** An ack: deltas up to upToSeq leave the outbox. */
  acked(upToSeq: number): void;
  /** Sends what the in-flight bound allows (call when deltas were queued). */
  pump(): void;
  /** Resolves once every delta recorded so far is on the wire; rejects when the stream ends first. */
  allSent(): Promise<void>;
  /** The stream ended: waiters fail. */
  end(): void;
}

export interface OutboxPumpOptions {
  readonly outbox: Outbox;
  readonly send: (deltas: readonly FileDelta[]) => void;
  /** Deltas per batch. */
  readonly batchSize: number;
  /** Most deltas sent and not yet acked. */
  readonly maxInFlight: number;
}

export class StreamEnded extends Error {
  override readonly name = 'StreamEnded';
  constructor() {
    super('the stream ended');
  }
}

export function createOutboxPump(opts: OutboxPumpOptions): OutboxPump {
  let started = false;
  let ended = false;
  let sentUpTo = 0;
  let ackedUpTo = 0;
  const waiters: (() => void)[] = [];
  const everythingSent = () => started && sentUpTo >= opts.outbox.lastSeq();
  const wake = () => {
    if (everythingSent() || ended) for (const w of waiters.splice(0)) w();
  };
  const pump = () => {
    if (!started || ended) return;
    while (sentUpTo - ackedUpTo < opts.maxInFlight) {
      const pending = opts.outbox.pending(sentUpTo, opts.batchSize);
      if (!pending.length) break;
      // Cut by bytes too: the controller reads at most MAX_AGENT_MESSAGE_BYTES a message.
      let bytes = 0;
      let n = 0;
      while (n < pending.length && (n === 0 || bytes + deltaSizeBound(pending[n]!) <= AGENT_BATCH_BYTES)) bytes += deltaSizeBound(pending[n++]!);
      const batch = pending.slice(0, n);
      opts.send(batch);
      sentUpTo = batch[batch.length - 1]!.seq;
    }
    wake();
  };
  return {
    start(committedSeq) {
      started = true;
      sentUpTo = ackedUpTo = committedSeq;
      pump();
    },
    acked(upToSeq) {
      opts.outbox.ack(upToSeq);
      ackedUpTo = Math.max(ackedUpTo, upToSeq);
      pump();
    },
    pump,
    async allSent() {
      while (!everythingSent()) {
        if (ended) throw new StreamEnded();
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
      if (ended) throw new StreamEnded();
    },
    end() {
      ended = true;
      wake();
    },
  };
}
