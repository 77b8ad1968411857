import { fromBinary } from '@bufbuild/protobuf';
import type { Timestamp } from '@bufbuild/protobuf/wkt';
import { ConnectRequestSchema, type ConnectRequest } from './gen/vigil/v1/agent_pb.js';
import type { FileDelta, FileState } from './gen/vigil/v1/types_pb.js';

/**
 * Decodes a ConnectRequest from its wire bytes. A delta batch (the message an agent sends most, and
 * what a fleet-wide burst is made of) is read by a decoder of its own into the same messages
 * `fromBinary` gives, without protobuf-es's reflection; anything else, and any delta batch that
 * holds what that decoder does not expect (an unknown or repeated field, a field of another wire
 * type, a varint longer than its type, a message cut off), is decoded by protobuf-es, so the
 * result and the errors are always the library's. Throws what `fromBinary` throws.
 */
export function decodeConnectRequest(bytes: Uint8Array): ConnectRequest {
  return decodeDeltaBatchRequest(bytes) ?? fromBinary(ConnectRequestSchema, bytes);
}

/** Thrown inside the decoder to hand the message to protobuf-es; never leaves this file. */
const FALL_BACK: unique symbol = Symbol('fall back to fromBinary');

// Tags (field number << 3 | wire type) of the fields the decoder reads.
const VARINT = 0;
const LEN = 2;
const TAG_REQUEST_DELTAS = (2 << 3) | LEN;
const TAG_BATCH_DELTA = (1 << 3) | LEN;

/** Decodes `ConnectRequest{deltas}`; null when the message is anything else or not as expected. */
export function decodeDeltaBatchRequest(bytes: Uint8Array): ConnectRequest | null {
  const r = new Reader(bytes);
  try {
    if (bytes.length === 0 || r.tag() !== TAG_REQUEST_DELTAS) return null;
    const end = r.lenEnd(TAG_REQUEST_DELTAS);
    // The batch must be the whole message: a second oneof member, or a second batch to merge, is the library's to read.
    if (end !== bytes.length) return null;
    const deltas: FileDelta[] = [];
    while (r.pos < end) {
      if (r.tag() !== TAG_BATCH_DELTA) return null;
      deltas.push(readDelta(r, r.lenEnd(TAG_BATCH_DELTA)));
    }
    return { $typeName: 'vigil.v1.ConnectRequest', msg: { case: 'deltas', value: { $typeName: 'vigil.v1.DeltaBatch', deltas } } };
  } catch (err) {
    if (err === FALL_BACK) return null;
    throw err;
  }
}

function readDelta(r: Reader, end: number): FileDelta {
  let seq = 0n;
  let path = r.empty;
  let kind = 0;
  let state: FileState | undefined;
  let detectedAt: Timestamp | undefined;
  let source = 0;
  let seen = 0;
  while (r.pos < end) {
    const tag = r.tag();
    const field = tag >>> 3;
    // Each field at most once (the library merges or overwrites repeats), each of its own wire type.
    if (field > 6 || seen & (1 << field)) throw FALL_BACK;
    seen |= 1 << field;
    if (field === 2) path = r.bytes(tag);
    else if (field === 4) state = readState(r, r.lenEnd(tag));
    else if (field === 5) detectedAt = readTimestamp(r, r.lenEnd(tag));
    else if (field === 1) seq = r.uint64(tag);
    else if (field === 3) kind = r.int32(tag);
    else if (field === 6) source = r.int32(tag);
    else throw FALL_BACK;
  }
  r.ended(end);
  // As the library leaves them: an unset message field is no property at all.
  const delta: { -readonly [K in keyof FileDelta]: FileDelta[K] } = { $typeName: 'vigil.v1.FileDelta', seq, path, kind, source };
  if (state) delta.state = state;
  if (detectedAt) delta.detectedAt = detectedAt;
  return delta;
}

function readState(r: Reader, end: number): FileState {
  const s: { -readonly [K in keyof FileState]: FileState[K] } = {
    $typeName: 'vigil.v1.FileState',
    type: 0,
    size: 0n,
    mode: 0,
    uid: 0,
    gid: 0,
    mtimeNs: 0n,
    ctimeNs: 0n,
    inode: 0n,
    nlink: 0,
    sha256: r.empty,
    symlinkTarget: r.empty,
    error: '',
    digestAlgorithm: '',
    digest: r.empty,
    xattrsSha256: r.empty,
  };
  let seen = 0;
  while (r.pos < end) {
    const tag = r.tag();
    const field = tag >>> 3;
    if (field > 16 || seen & (1 << field)) throw FALL_BACK;
    seen |= 1 << field;
    switch (field) {
      case 1: s.type = r.int32(tag); break;
      case 2: s.size = r.uint64(tag); break;
      case 3: s.mode = r.uint32(tag); break;
      case 4: s.uid = r.uint32(tag); break;
      case 5: s.gid = r.uint32(tag); break;
      case 6: s.mtimeNs = r.int64(tag); break;
      case 7: s.ctimeNs = r.int64(tag); break;
      case 8: s.inode = r.uint64(tag); break;
      case 9: s.nlink = r.uint32(tag); break;
      case 10: s.sha256 = r.bytes(tag); break;
      case 11: s.symlinkTarget = r.bytes(tag); break;
      case 12: s.error = r.string(tag); break;
      case 13: s.digestAlgorithm = r.string(tag); break;
      case 14: s.digest = r.bytes(tag); break;
      case 15: s.xattrsSha256 = r.bytes(tag); break;
      case 16: s.attrValues = r.bytes(tag); break;
      default: throw FALL_BACK;
    }
  }
  r.ended(end);
  return s;
}

function readTimestamp(r: Reader, end: number): Timestamp {
  let seconds = 0n;
  let nanos = 0;
  let seen = 0;
  while (r.pos < end) {
    const tag = r.tag();
    const field = tag >>> 3;
    if (field > 2 || seen & (1 << field)) throw FALL_BACK;
    seen |= 1 << field;
    if (field === 1) seconds = r.int64(tag);
    else if (field === 2) nanos = r.int32(tag);
    else throw FALL_BACK;
  }
  r.ended(end);
  return { $typeName: 'google.protobuf.Timestamp', seconds, nanos };
}

const TWO_32 = 2 ** 32;
const EMPTY: Uint8Array<ArrayBuffer> = new Uint8Array(0);
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads varints and length-delimited fields, throwing FALL_BACK at anything the library could read
 * differently (or not at all): the library then decides.
 */
class Reader {
  pos = 0;
  /** An unset bytes field, as the library leaves it (never written to: it has no bytes). */
  readonly empty = EMPTY;
  // The last varint read, as its low and high 32 bits.
  private lo = 0;
  private hi = 0;

  constructor(private readonly buf: Uint8Array) {}

  /** A field's tag: at most two bytes (field numbers up to 2047). */
  tag(): number {
    const b0 = this.byte();
    if (b0 < 0x80) return b0;
    const b1 = this.byte();
    if (b1 >= 0x80) throw FALL_BACK;
    return (b0 & 0x7f) | (b1 << 7);
  }

  private byte(): number {
    if (this.pos >= this.buf.length) throw FALL_BACK;
    return this.buf[this.pos++]!;
  }

  /** Reads a varint of at most 10 bytes into lo and hi. */
  private varint(tag: number): void {
    if ((tag & 7) !== VARINT) throw FALL_BACK;
    let lo = 0;
    let hi = 0;
    let b = 0;
    // Bits 0-27 in four bytes, 28-34 in the fifth (split between lo and hi), then 35-63.
    for (let shift = 0; shift < 28; shift += 7) {
      b = this.byte();
      lo |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.lo = lo >>> 0;
        this.hi = 0;
        return;
      }
    }
    b = this.byte();
    lo |= (b & 0x0f) << 28;
    hi = (b & 0x7f) >> 4;
    if (b >= 0x80) {
      for (let shift = 3; ; shift += 7) {
        b = this.byte();
        if (shift === 31 && b > 1) throw FALL_BACK; // beyond 64 bits
        hi |= (b & 0x7f) << shift;
        if (b < 0x80) break;
        if (shift === 31) throw FALL_BACK;
      }
    }
    this.lo = lo >>> 0;
    this.hi = hi >>> 0;
  }

  uint64(tag: number): bigint {
    this.varint(tag);
    return this.hi < 0x200000 ? BigInt(this.hi * TWO_32 + this.lo) : (BigInt(this.hi) << 32n) | BigInt(this.lo);
  }

  int64(tag: number): bigint {
    this.varint(tag);
    if (this.hi < 0x200000) return BigInt(this.hi * TWO_32 + this.lo);
    return BigInt.asIntN(64, (BigInt(this.hi) << 32n) | BigInt(this.lo));
  }

  /** A uint32 field: a varint that fits in 32 bits (a longer one is truncated by the library). */
  uint32(tag: number): number {
    this.varint(tag);
    if (this.hi !== 0) throw FALL_BACK;
    return this.lo;
  }

  /** An int32 or enum field: non-negative and 32 bits here (a negative one is ten bytes, read by the library). */
  int32(tag: number): number {
    this.varint(tag);
    if (this.hi !== 0 || this.lo > 0x7fffffff) throw FALL_BACK;
    return this.lo;
  }

  /** A length-delimited field's end; the length itself is read. */
  lenEnd(tag: number): number {
    if ((tag & 7) !== LEN) throw FALL_BACK;
    this.varint(VARINT);
    const end = this.pos + this.lo;
    if (this.hi !== 0 || end > this.buf.length) throw FALL_BACK;
    return end;
  }

  bytes(tag: number): Uint8Array<ArrayBuffer> {
    const end = this.lenEnd(tag);
    // The generated types say ArrayBuffer; the library hands out views of the input as they are.
    const out = this.buf.subarray(this.pos, end) as Uint8Array<ArrayBuffer>;
    this.pos = end;
    return out;
  }

  string(tag: number): string {
    const b = this.bytes(tag);
    if (b.length === 0) return '';
    try {
      return utf8.decode(b);
    } catch {
      throw FALL_BACK; // not UTF-8: the library says so
    }
  }

  /** A nested message must end exactly where its length said. */
  ended(end: number): void {
    if (this.pos !== end) throw FALL_BACK;
  }
}
