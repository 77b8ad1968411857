import assert from 'node:assert/strict';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { describe, it } from 'node:test';
import { decodeConnectRequest, decodeDeltaBatchRequest } from './connect-request-decoder.js';
import { ConnectRequestSchema, type ConnectRequest } from './gen/vigil/v1/agent_pb.js';
import { ChangeKind, ChangeSource, FileType } from './gen/vigil/v1/types_pb.js';

/** A small seeded generator, so a failing case can be replayed. */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

function randomBatch(rand: () => number, n: number): Buffer {
  const big = (bits: number) => BigInt(Math.floor(rand() * 2 ** 30)) * BigInt(Math.floor(rand() * 2 ** Math.max(0, bits - 30)) + 1);
  const bytes = (len: number) => Buffer.from(Array.from({ length: len }, () => Math.floor(rand() * 256)));
  const deltas = Array.from({ length: n }, (_, i) => ({
    seq: rand() < 0.1 ? 2n ** 63n + BigInt(i) : BigInt(i + 1) * big(20),
    path: rand() < 0.05 ? new Uint8Array(0) : bytes(1 + Math.floor(rand() * 300)),
    kind: Math.floor(rand() * 7),
    state:
      rand() < 0.15
        ? undefined
        : {
            type: rand() < 0.9 ? FileType.REGULAR : Math.floor(rand() * 9),
            size: big(rand() < 0.5 ? 20 : 64),
            mode: rand() < 0.1 ? 0xffffffff : 0o100644,
            uid: Math.floor(rand() * 2 ** 32),
            gid: Math.floor(rand() * 70_000),
            mtimeNs: rand() < 0.1 ? -big(40) : 1_700_000_000_000_000_000n + big(40),
            ctimeNs: rand() < 0.05 ? -(2n ** 63n) : big(63),
            inode: big(64) % 2n ** 64n,
            nlink: Math.floor(rand() * 10),
            sha256: rand() < 0.8 ? bytes(32) : new Uint8Array(0),
            symlinkTarget: rand() < 0.1 ? bytes(20) : new Uint8Array(0),
            error: rand() < 0.1 ? 'EACCES ü ✓' : '',
            digestAlgorithm: rand() < 0.1 ? 'sha512' : '',
            digest: rand() < 0.1 ? bytes(64) : new Uint8Array(0),
            xattrsSha256: rand() < 0.2 ? bytes(32) : new Uint8Array(0),
            ...(rand() < 0.3 ? { attrValues: bytes(Math.floor(rand() * 40)) } : {}),
          },
    detectedAt: rand() < 0.1 ? undefined : { seconds: rand() < 0.05 ? -big(33) : big(33), nanos: Math.floor(rand() * 1e9) },
    source: Math.floor(rand() * 7),
  }));
  return Buffer.from(toBinary(ConnectRequestSchema, create(ConnectRequestSchema, { msg: { case: 'deltas', value: { deltas } } })));
}

/** What fromBinary makes of the bytes: the message, or the error it throws. */
function library(bytes: Uint8Array): { value: ConnectRequest } | { error: string } {
  try {
    return { value: fromBinary(ConnectRequestSchema, bytes) };
  } catch (err) {
    return { error: String(err) };
  }
}

function ours(bytes: Uint8Array): { value: ConnectRequest } | { error: string } {
  try {
    return { value: decodeConnectRequest(bytes) };
  } catch (err) {
    return { error: String(err) };
  }
}

const tag = (field: number, wire: number) => Buffer.from([(field << 3) | wire]);
const len = (b: Buffer) => Buffer.concat([Buffer.from([b.length]), b]);
/** ConnectRequest{deltas: DeltaBatch{deltas: [one delta made of these bytes]}}, each length under 128. */
const oneDelta = (delta: Buffer) => Buffer.concat([tag(2, 2), len(Buffer.concat([tag(1, 2), len(delta)]))]);

describe('decodeConnectRequest', () => {
  it('gives exactly what fromBinary gives for delta batches of every shape, reading them itself', () => {
    const rand = rng(16);
    for (let round = 0; round < 200; round++) {
      const bytes = randomBatch(rand, 1 + Math.floor(rand() * 20));
      const fast = decodeDeltaBatchRequest(bytes);
      // Negative times and large values are long varints the decoder reads; none of these falls back.
      assert.ok(fast, `round ${round} fell back`);
      assert.deepStrictEqual(fast, fromBinary(ConnectRequestSchema, bytes), `round ${round}`);
    }
  });

  it('hands other messages and unexpected encodings to protobuf-es, with its result or its error', () => {
    const delta = Buffer.concat([tag(1, 0), Buffer.from([5]), tag(2, 2), len(Buffer.from('/etc/x'))]);
    const cases: Record<string, Buffer> = {
      hello: Buffer.from(toBinary(ConnectRequestSchema, create(ConnectRequestSchema, { msg: { case: 'hello', value: { hostname: 'h' } } }))),
      'seq twice (the last wins)': oneDelta(Buffer.concat([delta, tag(1, 0), Buffer.from([9])])),
      'unknown field (kept as unknown)': oneDelta(Buffer.concat([delta, tag(9, 0), Buffer.from([1])])),
      'seq as a length-delimited field': oneDelta(Buffer.concat([tag(1, 2), len(Buffer.from('ab'))])),
      'state twice (merged)': oneDelta(Buffer.concat([delta, tag(4, 2), len(Buffer.concat([tag(2, 0), Buffer.from([7])])), tag(4, 2), len(Buffer.concat([tag(3, 0), Buffer.from([8])]))])),
      'a batch twice (merged)': Buffer.concat([oneDelta(delta), oneDelta(delta)]),
      'cut inside a delta': oneDelta(delta).subarray(0, 6),
      'a length past the end': Buffer.concat([tag(2, 2), Buffer.from([100]), tag(1, 2)]),
      'mode as an 11-byte varint': oneDelta(Buffer.concat([delta, tag(4, 2), len(Buffer.concat([tag(3, 0), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])]))])),
      'error not UTF-8': oneDelta(Buffer.concat([delta, tag(4, 2), len(Buffer.concat([tag(12, 2), len(Buffer.from([0xc3, 0x28]))]))])),
      'kind negative': oneDelta(Buffer.concat([delta, tag(3, 0), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])])),
      empty: Buffer.alloc(0),
    };
    for (const [name, bytes] of Object.entries(cases)) {
      assert.equal(decodeDeltaBatchRequest(bytes), null, name);
      assert.deepStrictEqual(ours(bytes), library(bytes), name);
    }
    // The decoder did fall back: fromBinary kept the unknown field and merged the two states.
    const unknown = ours(cases['unknown field (kept as unknown)']!);
    assert.ok('value' in unknown && unknown.value.msg.case === 'deltas' && unknown.value.msg.value.deltas[0]!.$unknown?.length === 1);
    const merged = ours(cases['state twice (merged)']!);
    assert.ok('value' in merged && merged.value.msg.case === 'deltas');
    assert.deepEqual([merged.value.msg.value.deltas[0]!.state?.size, merged.value.msg.value.deltas[0]!.state?.mode], [7n, 8]);
  });

  it('agrees with fromBinary on damaged batches: the same message or the same error', () => {
    const rand = rng(2026);
    for (let round = 0; round < 2000; round++) {
      const bytes = randomBatch(rand, 1 + Math.floor(rand() * 3));
      for (let flips = 1 + Math.floor(rand() * 3); flips > 0; flips--) bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256);
      const cut = rand() < 0.3 ? bytes.subarray(0, Math.floor(rand() * bytes.length)) : bytes;
      assert.deepStrictEqual(ours(cut), library(cut), `round ${round}: ${cut.toString('hex')}`);
    }
  });

  it('keeps the kinds and sources as numbers, as the library does', () => {
    const bytes = toBinary(ConnectRequestSchema, create(ConnectRequestSchema, { msg: { case: 'deltas', value: { deltas: [{ seq: 1n, path: Buffer.from('/a'), kind: ChangeKind.DELETED, source: ChangeSource.RESCAN }] } } }));
    const req = decodeDeltaBatchRequest(bytes);
    assert.ok(req?.msg.case === 'deltas');
    assert.deepEqual([req.msg.value.deltas[0]!.kind, req.msg.value.deltas[0]!.source, req.msg.value.deltas[0]!.state], [ChangeKind.DELETED, ChangeSource.RESCAN, undefined]);
  });
});
