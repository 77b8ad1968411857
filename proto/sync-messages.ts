/**
 * Reconciliation's messages (core/sync-types.ts) mapped to and from the generated ones
 * (agent.proto: SyncRanges, SyncVerdicts, SyncEntries, SyncRepairs). Positions and digests are
 * signed 64-bit here (as Postgres stores them) and fixed64 on the wire.
 */
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { ContractError } from './convert.js';
import {
  PositionRangeSchema,
  type PositionRange as PbPositionRange,
  type SyncEntries as PbSyncEntries,
  type SyncEntriesSchema,
  type SyncRanges as PbSyncRanges,
  type SyncRangesSchema,
  type SyncRepairs as PbSyncRepairs,
  type SyncRepairsSchema,
  type SyncVerdicts as PbSyncVerdicts,
  type SyncVerdictsSchema,
} from './gen/vigil/v1/agent_pb.js';
import type { PositionRange } from '../core/sync-digest.js';
import { MAX_SYNC_ENTRIES, MAX_SYNC_RANGES, type Leaf, type LeafEntry, type RangeCompare, type Repairs, type Verdict } from '../core/sync-types.js';

const toWire = (x: bigint) => BigInt.asUintN(64, x);
const fromWire = (x: bigint) => BigInt.asIntN(64, x);

function rangeToPb([start, end]: PositionRange) {
  return create(PositionRangeSchema, { start: toWire(start), end: toWire(end) });
}

function rangeFromPb(r: PbPositionRange | undefined): PositionRange {
  if (!r) throw new ContractError('a sync range is missing');
  const range = [fromWire(r.start), fromWire(r.end)] as const;
  if (range[0] > range[1]) throw new ContractError('a sync range ends before it starts');
  return range;
}

export function syncRangesToPb(exchangeId: bigint, ranges: readonly RangeCompare[]): MessageInitShape<typeof SyncRangesSchema> {
  return { exchangeId, ranges: ranges.map((r) => ({ range: rangeToPb(r.range), count: BigInt(r.count), xor: toWire(r.xor) })) };
}

export function syncRangesFromPb(m: PbSyncRanges): RangeCompare[] {
  if (m.ranges.length > MAX_SYNC_RANGES) throw new ContractError(`${m.ranges.length} sync ranges in one message; at most ${MAX_SYNC_RANGES}`);
  return m.ranges.map((r) => ({ range: rangeFromPb(r.range), count: Number(r.count), xor: fromWire(r.xor) }));
}

export function syncVerdictsToPb(exchangeId: bigint, verdicts: readonly Verdict[]): MessageInitShape<typeof SyncVerdictsSchema> {
  return { exchangeId, verdicts: verdicts.map((v) => ({ same: v.same, controllerCount: BigInt(v.controllerCount) })) };
}

export function syncVerdictsFromPb(m: PbSyncVerdicts): Verdict[] {
  return m.verdicts.map((v) => ({ same: v.same, controllerCount: Number(v.controllerCount) }));
}

export function syncEntriesToPb(exchangeId: bigint, leaves: readonly Leaf[]): MessageInitShape<typeof SyncEntriesSchema> {
  return {
    exchangeId,
    leaves: leaves.map((l) => ({ range: rangeToPb(l.range), entries: l.entries.map((e) => ({ path: e.path, digest: toWire(e.digest) })) })),
  };
}

export function syncEntriesFromPb(m: PbSyncEntries): Leaf[] {
  const total = m.leaves.reduce((n, l) => n + l.entries.length, 0);
  if (total > MAX_SYNC_ENTRIES) throw new ContractError(`${total} sync entries in one message; at most ${MAX_SYNC_ENTRIES}`);
  if (m.leaves.length > MAX_SYNC_RANGES) throw new ContractError(`${m.leaves.length} sync leaves in one message; at most ${MAX_SYNC_RANGES}`);
  return m.leaves.map((l) => ({
    range: rangeFromPb(l.range),
    entries: l.entries.map((e) => {
      if (e.path.length === 0) throw new ContractError('a sync entry has an empty path');
      return { path: Buffer.from(e.path), digest: fromWire(e.digest) };
    }),
  }));
}

export function syncRepairsToPb(exchangeId: bigint, r: Repairs): MessageInitShape<typeof SyncRepairsSchema> {
  return { exchangeId, missing: [...r.missing], differing: [...r.differing], extra: [...r.extra] };
}

export function syncRepairsFromPb(m: PbSyncRepairs): Repairs {
  const bytes = (list: Uint8Array[]) => list.map((p) => Buffer.from(p));
  return { missing: bytes(m.missing), differing: bytes(m.differing), extra: bytes(m.extra) };
}
