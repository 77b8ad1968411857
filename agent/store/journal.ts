import type { Database, RootDatabase } from 'lmdb';
import type { ChangeKind, ChangeSource, FileDelta, FileState } from '../../core/model.js';
import type { OutboxWriter } from './outbox.js';
import { isLongKey, longKey, packLong } from './long-keys.js';
import { pathToKey } from './path-key.js';
import { encodeState } from './state-codec.js';

/** One change to record: the new baseline entry and the delta that reports it. */
export interface Change {
  readonly path: Buffer;
  readonly kind: ChangeKind;
  readonly state: FileState | null;
  readonly source: ChangeSource;
  readonly detectedAt: Date;
}

/**
 * Records changes: in one LMDB transaction the baseline moves and each change is numbered and
 * queued in the outbox, so a change survives kill -9 in both or in neither.
 */
export interface Journal {
  /**
   * Returns the deltas (seq 0 for those not queued). With queue false (a local scan of a
   * directory no controller hears about), only the baseline moves. A change that would take the
   * queue past its bound is not queued: the outbox records "resync needed" (Outbox.resync).
   */
  record(changes: readonly Change[], opts?: { queue: boolean }): FileDelta[];
}

/** Writes or removes a path's baseline entry, in the long database when its key is too long for LMDB (long-keys.ts). */
function putEntry(baseline: Database<Buffer, Buffer>, longBaseline: Database<Buffer, Buffer>, path: Buffer, state: FileState | null): void {
  const key = pathToKey(path);
  if (isLongKey(key)) {
    if (state) longBaseline.putSync(longKey(key), packLong(key, encodeState(state)));
    else longBaseline.removeSync(longKey(key));
  } else if (state) baseline.putSync(key, encodeState(state));
  else baseline.removeSync(key);
}

export function createJournal(env: RootDatabase, baseline: Database<Buffer, Buffer>, longBaseline: Database<Buffer, Buffer>, outbox: OutboxWriter): Journal {
  return {
    record(changes, { queue } = { queue: true }) {
      if (changes.length === 0) return [];
      return env.transactionSync(() => {
        const appender = queue ? outbox.appender() : null;
        const out = changes.map((c) => {
          putEntry(baseline, longBaseline, c.path, c.state);
          const d: FileDelta = { seq: 0, path: c.path, kind: c.kind, state: c.state, detectedAt: c.detectedAt, source: c.source };
          return appender ? appender.add(d) : d;
        });
        appender?.finish();
        return out;
      });
    },
  };
}
