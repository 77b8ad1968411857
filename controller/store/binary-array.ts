/**
 * One-dimensional Postgres arrays in the binary format (array_send / array_recv), built column by
 * column, for the `unnest($1::t[], ...)` parameters of the group commit (store/group-ingest.ts).
 *
 * Why: `pg` turns a JS array parameter into a text literal (every element escaped and quoted,
 * bytea as hex, numbers and dates as text), which Postgres then parses back element by element;
 * for a 2,000-delta group that was a fifth of the controller's CPU and much of its garbage. A
 * Buffer parameter goes as it is, in the binary format (pg-protocol's bind), and Postgres reads
 * it with the array type's receive function: no escaping, no parsing, half the bytes. PGlite
 * binds a Uint8Array parameter the same way (its array serializer leaves anything that is not a JS
 * array as it is), so the one encoding serves both; the store conformance suite runs on both.
 *
 * The layout (src/backend/utils/adt/arrayfuncs.c, array_recv): int32 dimensions (1), int32 flags
 * (1 when an element is null), uint32 element type OID, then per dimension int32 length and int32
 * lower bound (1); then per element int32 byte length (-1: null) and the element's own binary
 * form. All big-endian. The element type must be the one the parameter's cast names (`$1::int8[]`
 * expects int8 elements), or Postgres refuses the array.
 */

/** Element type OIDs (pg_type), for the types the ingest statements use. */
export const ELEMENT_OID = { bool: 16, bytea: 17, int8: 20, int4: 23, text: 25, timestamptz: 1184 } as const;
export type ElementType = keyof typeof ELEMENT_OID;

const HEADER = 20;
const TWO_32 = 4294967296;
/** 2000-01-01T00:00:00Z in ms since the epoch: Postgres' timestamp epoch. */
const PG_EPOCH_MS = 946_684_800_000;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * Builds one array parameter. Append one element per row with the method of the column's type
 * (or `null()`), then `finish()` for the Buffer to pass as the parameter.
 */
export class BinaryArray {
  private buf: Buffer;
  /** Over buf: writes without Buffer's range checks and without intermediate bigints. */
  private view: DataView;
  private pos = HEADER;
  private count = 0;
  private hasNull = false;

  /** `bytesHint`: the elements' likely total size, length words included (grows as needed). */
  constructor(
    readonly type: ElementType,
    bytesHint = 1024,
  ) {
    this.buf = Buffer.allocUnsafe(HEADER + Math.max(64, bytesHint));
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
  }

  /** Elements so far. */
  get length(): number {
    return this.count;
  }

  private room(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + bytes));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
    this.view = new DataView(next.buffer, next.byteOffset, next.length);
  }

  null(): void {
    this.room(4);
    this.view.setInt32(this.pos, -1);
    this.pos += 4;
    this.count++;
    this.hasNull = true;
  }

  /** int8 from an exact integer (a seq, a size, a uid). */
  int8(v: number): void {
    if (!Number.isSafeInteger(v)) throw new RangeError(`${v} is not a whole number Postgres' bigint holds exactly here`);
    this.room(12);
    const hi = Math.floor(v / TWO_32);
    this.view.setInt32(this.pos, 8);
    this.view.setInt32(this.pos + 4, hi);
    this.view.setUint32(this.pos + 8, v - hi * TWO_32);
    this.pos += 12;
    this.count++;
  }

  /** int8 from a bigint in the signed 64-bit range. */
  int8Big(v: bigint): void {
    if (v < INT64_MIN || v > INT64_MAX) throw new RangeError(`${v} is outside Postgres' bigint`);
    this.room(12);
    this.view.setInt32(this.pos, 8);
    this.view.setBigInt64(this.pos + 4, v);
    this.pos += 12;
    this.count++;
  }

  /** int8 holding the 64 bits of an unsigned bigint (an inode), as BigInt.asIntN(64, v) would. */
  int8Bits(v: bigint): void {
    this.room(12);
    this.view.setInt32(this.pos, 8);
    this.view.setBigUint64(this.pos + 4, v);
    this.pos += 12;
    this.count++;
  }

  /** int8 from 8 big-endian bytes. */
  int8Bytes(src: Uint8Array, offset = 0): void {
    if (src.length < offset + 8) throw new RangeError('an int8 needs 8 bytes');
    this.room(12);
    this.view.setInt32(this.pos, 8);
    this.buf.set(src.subarray(offset, offset + 8), this.pos + 4);
    this.pos += 12;
    this.count++;
  }

  /**
   * int8 from the first 8 characters of a latin1 string, one byte each, big-endian: the head of
   * a SHA-256 in core/sync-digest.ts's string form (a path position, an entry digest).
   */
  int8Latin1(s: string): void {
    if (s.length < 8) throw new RangeError('an int8 needs 8 bytes');
    this.room(12);
    this.view.setInt32(this.pos, 8);
    const b = this.buf;
    const at = this.pos + 4;
    for (let i = 0; i < 8; i++) b[at + i] = s.charCodeAt(i);
    this.pos += 12;
    this.count++;
  }

  int4(v: number): void {
    if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw new RangeError(`${v} is outside Postgres' integer`);
    this.room(8);
    this.view.setInt32(this.pos, 4);
    this.view.setInt32(this.pos + 4, v);
    this.pos += 8;
    this.count++;
  }

  bytea(b: Uint8Array): void {
    this.room(4 + b.length);
    this.view.setInt32(this.pos, b.length);
    this.buf.set(b, this.pos + 4);
    this.pos += 4 + b.length;
    this.count++;
  }

  /**
   * text as UTF-8 (a lone surrogate becomes U+FFFD, as Buffer.from would make it). Postgres
   * refuses a NUL in text, in this format as in the text one: callers pass none.
   */
  text(s: string): void {
    this.room(4 + s.length * 3);
    const n = this.buf.write(s, this.pos + 4, 'utf8');
    this.view.setInt32(this.pos, n);
    this.pos += 4 + n;
    this.count++;
  }

  /** timestamptz from ms since the epoch: Postgres keeps µs since 2000-01-01 UTC. */
  timestamptz(ms: number): void {
    if (!Number.isSafeInteger(ms)) throw new RangeError(`${ms} is not a time in whole ms`);
    this.room(12);
    this.view.setInt32(this.pos, 8);
    // (ms - epoch) * 1000 can pass 2^53: split before multiplying so every step is exact.
    const d = ms - PG_EPOCH_MS;
    const q = Math.floor(d / TWO_32);
    const low = (d - q * TWO_32) * 1000;
    const carry = Math.floor(low / TWO_32);
    this.view.setInt32(this.pos + 4, q * 1000 + carry);
    this.view.setUint32(this.pos + 8, low - carry * TWO_32);
    this.pos += 12;
    this.count++;
  }

  bool(v: boolean): void {
    this.room(5);
    this.view.setInt32(this.pos, 1);
    this.buf[this.pos + 4] = v ? 1 : 0;
    this.pos += 5;
    this.count++;
  }

  /** The parameter: header and elements (a view of this builder's buffer; append no more). */
  finish(): Buffer {
    const v = this.view;
    v.setInt32(0, 1);
    v.setInt32(4, this.hasNull ? 1 : 0);
    v.setUint32(8, ELEMENT_OID[this.type]);
    v.setInt32(12, this.count);
    v.setInt32(16, 1);
    return this.buf.subarray(0, this.pos);
  }
}

/** A text array of these values, each once per row: for columns built whole (refusals, alerts). */
export function textArray(values: readonly (string | null)[]): Buffer {
  const a = new BinaryArray('text', values.length * 16);
  for (const v of values) {
    if (v === null) a.null();
    else a.text(v);
  }
  return a.finish();
}

export function int8Array(values: readonly number[]): Buffer {
  const a = new BinaryArray('int8', values.length * 12);
  for (const v of values) a.int8(v);
  return a.finish();
}

export function byteaArray(values: readonly (Uint8Array | null)[]): Buffer {
  const a = new BinaryArray('bytea', values.reduce((n, v) => n + 4 + (v?.length ?? 0), 0));
  for (const v of values) {
    if (v === null) a.null();
    else a.bytea(v);
  }
  return a.finish();
}
