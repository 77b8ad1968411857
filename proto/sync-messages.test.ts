import assert from 'node:assert/strict';
import { create } from '@bufbuild/protobuf';
import { describe, it } from 'node:test';
import { ContractError } from './convert.js';
import { SyncEntriesSchema, SyncRangesSchema } from './gen/vigil/v1/agent_pb.js';
import { MAX_POSITION, MIN_POSITION } from '../core/sync-digest.js';
import { MAX_SYNC_ENTRIES, MAX_SYNC_RANGES } from '../core/sync-types.js';
import { syncEntriesFromPb, syncEntriesToPb, syncRangesFromPb, syncRangesToPb } from './sync-messages.js';

describe('sync messages', () => {
  it('carry signed positions and digests through fixed64 unchanged', () => {
    const ranges = [{ range: [MIN_POSITION, -1n] as const, count: 3, xor: -(2n ** 62n) }, { range: [0n, MAX_POSITION] as const, count: 0, xor: 0n }];
    assert.deepEqual(syncRangesFromPb(create(SyncRangesSchema, syncRangesToPb(7n, ranges))), ranges);
    const leaves = [{ range: [-5n, 5n] as const, entries: [{ path: Buffer.from([0x2f, 0xff]), digest: -1n }] }];
    assert.deepEqual(syncEntriesFromPb(create(SyncEntriesSchema, syncEntriesToPb(8n, leaves))), leaves);
  });

  it('refuse a range that ends before it starts, a missing range, an empty path and oversized messages', () => {
    const inverted = create(SyncRangesSchema, syncRangesToPb(1n, [{ range: [5n, 4n], count: 0, xor: 0n }]));
    assert.throws(() => syncRangesFromPb(inverted), (e: unknown) => e instanceof ContractError && /ends before it starts/.test(e.message));
    assert.throws(() => syncRangesFromPb(create(SyncRangesSchema, { ranges: [{ count: 1n }] })), /sync range is missing/);
    const empty = create(SyncEntriesSchema, { leaves: [{ range: { start: 0n, end: 1n }, entries: [{ path: new Uint8Array(0), digest: 1n }] }] });
    assert.throws(() => syncEntriesFromPb(empty), /empty path/);
    const many = create(SyncRangesSchema, { ranges: Array.from({ length: MAX_SYNC_RANGES + 1 }, () => ({ range: { start: 0n, end: 0n } })) });
    assert.throws(() => syncRangesFromPb(many), (e: unknown) => e instanceof ContractError && /at most 4096/.test(e.message));
    const entries = Array.from({ length: MAX_SYNC_ENTRIES + 1 }, (_, i) => ({ path: Buffer.from(`/f${i}`), digest: 0n }));
    const big = create(SyncEntriesSchema, syncEntriesToPb(2n, [{ range: [0n, 1n], entries }]));
    assert.throws(() => syncEntriesFromPb(big), (e: unknown) => e instanceof ContractError && /at most 20000/.test(e.message));
  });
});
