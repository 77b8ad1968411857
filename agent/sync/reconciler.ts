import type { Logger } from 'pino';
import { displayPath } from '../../core/model.js';
import { ContractError } from '../../proto/convert.js';
import { entryDigest, MAX_POSITION, MIN_POSITION, splitRange, type PositionRange } from '../../core/sync-digest.js';
import { MAX_SYNC_ENTRIES, MAX_SYNC_RANGES, type Leaf, type RangeCompare, type Repairs, type Verdict } from '../../core/sync-types.js';
import type { Baseline } from '../store/baseline.js';
import type { Change } from '../store/journal.js';
import { baselineEntriesIn, baselineRangeDigests } from './baseline-digests.js';

/**
 * One exchange with the controller. `build` is called when every delta recorded so far has been
 * sent, and its message goes out in the same tick: the controller, which handles a stream's
 * messages in order, then compares against exactly the deltas the digests reflect.
 */
export interface SyncChannel {
  compareRanges(build: () => RangeCompare[]): Promise<Verdict[]>;
  /** Rejects with SyncMessageTooLarge, sending nothing, when the built leaves would not fit one message. */
  compareEntries(build: () => Leaf[]): Promise<Repairs>;
}

/** The leaves built for one exchange are more than one message may carry (proto/wire-limits.ts). */
export class SyncMessageTooLarge extends Error {
  override readonly name = 'SyncMessageTooLarge';
}

export interface ReconcileResult {
  /** Differences found and queued as deltas with source `reconcile`. */
  readonly repairs: number;
  /** Ranges compared, leaves compared entry by entry. */
  readonly ranges: number;
  readonly leaves: number;
}

export interface ReconcilerOptions {
  readonly baseline: Pick<Baseline, 'encodedUnder' | 'get'>;
  /**
   * Runs `repairs` on the monitor's one serial path (everything that writes the baseline runs
   * there, one at a time) and records and queues what it returns; resolves with how many.
   * `repairs` reads the baseline when it runs, so a change recorded meanwhile is seen.
   */
  readonly recordRepairs: (repairs: () => Change[]) => Promise<number>;
  /** Whether the current policy covers a path: an extra path it does not cover is dropped quietly. */
  readonly covers: (path: Buffer) => boolean;
  readonly clock: () => Date;
  readonly logger: Logger;
  /** A differing range is compared entry by entry when neither side holds more entries than this. */
  readonly leafEntries?: number;
  /** Sub-ranges a differing range is split into. */
  readonly split?: number;
}

/** Repairs logged one by one per exchange; the rest are counted. */
const LOGGED_REPAIRS = 20;

const byStart = (a: PositionRange, b: PositionRange) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

/**
 * Reconciliation, the agent's side (docs/delivery.md): the whole position range's digest first,
 * a differing range split until it is small enough to compare entry by entry, then a repair
 * delta for each difference.
 */
export async function reconcile(channel: SyncChannel, opts: ReconcilerOptions): Promise<ReconcileResult> {
  const leafEntries = opts.leafEntries ?? 64;
  const split = opts.split ?? 256;
  let toCompare: PositionRange[] = [[MIN_POSITION, MAX_POSITION]];
  let repairs = 0;
  let ranges = 0;
  let leafCount = 0;
  while (toCompare.length) {
    const batch = toCompare.splice(0, MAX_SYNC_RANGES).sort(byStart);
    let digests: RangeCompare[] = [];
    const verdicts = await channel.compareRanges(() => {
      const d = baselineRangeDigests(opts.baseline, batch);
      digests = batch.map((range, i) => ({ range, count: d[i]!.count, xor: d[i]!.xor }));
      return digests;
    });
    if (verdicts.length !== batch.length) throw new ContractError(`the controller gave ${verdicts.length} verdicts for ${batch.length} ranges`);
    ranges += batch.length;
    const leaves: PositionRange[] = [];
    const next: PositionRange[] = [];
    verdicts.forEach((v, i) => {
      if (v.same) return;
      const range = batch[i]!;
      if (Math.max(digests[i]!.count, v.controllerCount) <= leafEntries || range[0] === range[1]) leaves.push(range);
      else next.push(...splitRange(range[0], range[1], split));
    });
    toCompare = [...toCompare, ...next];
    leafCount += leaves.length;
    // Leaves hold at most leafEntries agent entries each: a message holds whole leaves.
    const perMessage = Math.max(1, Math.min(MAX_SYNC_RANGES, Math.floor(MAX_SYNC_ENTRIES / leafEntries)));
    for (let i = 0; i < leaves.length; i += perMessage) {
      const done = await compareLeavesFitting(channel, opts, leaves.slice(i, i + perMessage));
      repairs += done.repairs;
      // A leaf whose entries alone are too large for a message (very long paths) is split again.
      for (const range of done.tooLarge) toCompare.push(...splitRange(range[0], range[1], split));
    }
  }
  return { repairs, ranges, leaves: leafCount };
}

/** compareLeaves in as many exchanges as the message size needs: halves until each fits. */
async function compareLeavesFitting(channel: SyncChannel, opts: ReconcilerOptions, leaves: PositionRange[]): Promise<{ repairs: number; tooLarge: PositionRange[] }> {
  try {
    return { repairs: await compareLeaves(channel, opts, leaves), tooLarge: [] };
  } catch (err) {
    if (!(err instanceof SyncMessageTooLarge)) throw err;
    if (leaves.length === 1) return { repairs: 0, tooLarge: leaves[0]![0] === leaves[0]![1] ? [] : leaves };
    const half = Math.ceil(leaves.length / 2);
    const a = await compareLeavesFitting(channel, opts, leaves.slice(0, half));
    const b = await compareLeavesFitting(channel, opts, leaves.slice(half));
    return { repairs: a.repairs + b.repairs, tooLarge: [...a.tooLarge, ...b.tooLarge] };
  }
}

async function compareLeaves(channel: SyncChannel, opts: ReconcilerOptions, leaves: PositionRange[]): Promise<number> {
  const sent = new Map<string, bigint>();
  const found = await channel.compareEntries(() => {
    const entries = baselineEntriesIn(opts.baseline, leaves);
    sent.clear();
    for (const list of entries) for (const e of list) sent.set(e.path.toString('latin1'), e.digest);
    return leaves.map((range, i) => ({ range, entries: entries[i]! }));
  });
  return opts.recordRepairs(() => repairsFor(found, sent, opts));
}

/**
 * The repair deltas for what the controller found, against the baseline as it is now. Each
 * difference is re-read from the baseline: an entry that moved since the digests were taken has
 * had its own delta queued after them, which the controller applies in order.
 */
function repairsFor(found: Repairs, sent: ReadonlyMap<string, bigint>, opts: ReconcilerOptions): Change[] {
  const now = opts.clock();
  const changes: Change[] = [];
  const stillAsSent = (path: Buffer) => {
    const state = opts.baseline.get(path);
    const digest = sent.get(path.toString('latin1'));
    return state && digest !== undefined && entryDigest(path, state) === digest ? state : null;
  };
  for (const [list, kind] of [
    [found.missing, 'created'],
    [found.differing, 'modified'],
  ] as const) {
    for (const path of list) {
      const state = stillAsSent(path);
      if (state) changes.push({ path, kind, state, source: 'reconcile', detectedAt: now });
    }
  }
  for (const path of found.extra) {
    if (opts.baseline.get(path)) continue; // created since: its delta is queued
    // A path the policy no longer covers leaves the controller's state quietly, as it would have.
    changes.push({ path, kind: opts.covers(path) ? 'deleted' : 'refreshed', state: null, source: 'reconcile', detectedAt: now });
  }
  for (const c of changes.slice(0, LOGGED_REPAIRS)) opts.logger.warn({ path: displayPath(c.path), kind: c.kind }, 'reconciliation found a difference; queued a repair');
  if (changes.length > LOGGED_REPAIRS) opts.logger.warn({ more: changes.length - LOGGED_REPAIRS }, 'reconciliation found more differences; queued repairs');
  return changes;
}
