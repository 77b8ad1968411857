import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testDatabaseKinds, type TestDatabase } from '../../test/support/databases.js';
import { BinaryArray, byteaArray, int8Array, textArray } from './binary-array.js';

const PG_EPOCH_MS = 946_684_800_000n;

/** The element bytes after the 20-byte header: [length, value bytes] pairs. */
function elements(buf: Buffer): (Buffer | null)[] {
  const out: (Buffer | null)[] = [];
  for (let o = 20; o < buf.length; ) {
    const n = buf.readInt32BE(o);
    o += 4;
    if (n < 0) out.push(null);
    else {
      out.push(buf.subarray(o, o + n));
      o += n;
    }
  }
  return out;
}

describe('binary arrays', () => {
  it('writes the header array_recv reads: one dimension, the null flag, the element type, length, lower bound 1', () => {
    const a = new BinaryArray('int8');
    a.int8(1);
    a.null();
    const b = a.finish();
    assert.deepEqual([b.readInt32BE(0), b.readInt32BE(4), b.readUInt32BE(8), b.readInt32BE(12), b.readInt32BE(16)], [1, 1, 20, 2, 1]);
    const empty = new BinaryArray('text').finish();
    assert.deepEqual([empty.readInt32BE(0), empty.readInt32BE(4), empty.readUInt32BE(8), empty.readInt32BE(12), empty.length], [1, 0, 25, 0, 20]);
  });

  it('writes int8 and timestamptz exactly across their range, as bigint arithmetic would', () => {
    const ints = [0, 1, -1, 2 ** 32, -(2 ** 32), 2 ** 32 - 1, -(2 ** 32) - 1, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 1_700_000_000_123];
    const a = new BinaryArray('int8', 8); // grows as it goes
    for (const v of ints) a.int8(v);
    assert.deepEqual(elements(a.finish()).map((e) => e!.readBigInt64BE(0)), ints.map(BigInt));
    const bigs = [-(2n ** 63n), 2n ** 63n - 1n, 0n, -5n, 1_700_000_000_123_456_789n];
    const b = new BinaryArray('int8');
    for (const v of bigs) b.int8Big(v);
    assert.deepEqual(elements(b.finish()).map((e) => e!.readBigInt64BE(0)), bigs);
    assert.throws(() => new BinaryArray('int8').int8Big(2n ** 63n), RangeError);
    assert.throws(() => new BinaryArray('int8').int8(2 ** 53), RangeError);
    const bits = new BinaryArray('int8');
    for (const v of [2n ** 64n - 1n, 2n ** 63n, 7n]) bits.int8Bits(v);
    assert.deepEqual(elements(bits.finish()).map((e) => e!.readBigInt64BE(0)), [-1n, -(2n ** 63n), 7n], 'the same 64 bits, read signed');
    const times = [0, -1, 253_402_300_799_999, 946_684_800_000, 946_684_799_999, -62_135_596_800_000, 1_700_000_000_123, 8_640_000_000_000_000];
    const t = new BinaryArray('timestamptz');
    for (const ms of times) t.timestamptz(ms);
    assert.deepEqual(elements(t.finish()).map((e) => e!.readBigInt64BE(0)), times.map((ms) => (BigInt(ms) - PG_EPOCH_MS) * 1000n));
  });

  it('writes text as UTF-8, bytes as they are, the head of a latin1 digest as an int8', () => {
    const s = ['', 'ascii', 'zoë 文件 🙂', 'lone \ud800 surrogate', '"{a,b}" NULL \\'];
    assert.deepEqual(elements(textArray(s)).map((e) => e!.toString('utf8')), s.map((x) => Buffer.from(x, 'utf8').toString('utf8')));
    const bytes = [Buffer.from([0, 0xff, 0]), Buffer.alloc(0), null];
    assert.deepEqual(elements(byteaArray(bytes)), bytes);
    const digest = Buffer.from('80112233445566778899', 'hex');
    const a = new BinaryArray('int8');
    a.int8Latin1(digest.toString('latin1'));
    assert.deepEqual(elements(a.finish())[0], digest.subarray(0, 8));
    assert.deepEqual(elements(int8Array([3, 4])).map((e) => e!.readBigInt64BE(0)), [3n, 4n]);
  });
});

for (const kind of testDatabaseKinds()) {
  describe(`binary array parameters on ${kind.name}`, () => {
    let db: TestDatabase;
    before(async () => {
      db = await kind.open();
    });
    after(async () => {
      await db.drop();
    });

    it('every element type, nulls and empty arrays come back as they went', async () => {
      const int8 = new BinaryArray('int8');
      for (const v of [0, -1, Number.MAX_SAFE_INTEGER]) int8.int8(v);
      int8.int8Big(-(2n ** 63n));
      int8.null();
      const int4 = new BinaryArray('int4');
      for (const v of [0, -2147483648, 2147483647]) int4.int4(v);
      const ts = new BinaryArray('timestamptz');
      for (const ms of [0, 253_402_300_799_999, 946_684_799_999, 1_700_000_000_123]) ts.timestamptz(ms);
      const text = ['', 'ünï 🙂', '"{a,b}"', 'NULL', '\\', null];
      const bytes = [Buffer.from([0, 1, 0xff]), Buffer.alloc(0), null, Buffer.alloc(4096, 0xe9)];
      const flags = new BinaryArray('bool');
      flags.bool(true);
      flags.bool(false);
      const [row] = await db.sql.query(
        `select $1::int8[]::text[] as i8, $2::int4[] as i4, (select array_agg((extract(epoch from t) * 1000)::numeric::text order by o) from unnest($3::timestamptz[]) with ordinality as u(t, o)) as ts,
                $4::text[] as t, $5::bytea[] as b, $6::bool[] as f, cardinality($7::text[]) as empty`,
        [int8.finish(), int4.finish(), ts.finish(), textArray(text), byteaArray(bytes), flags.finish(), textArray([])],
      );
      assert.deepEqual(row!.i8, ['0', '-1', String(Number.MAX_SAFE_INTEGER), String(-(2n ** 63n)), null]);
      assert.deepEqual(row!.i4, [0, -2147483648, 2147483647]);
      assert.deepEqual((row!.ts as string[]).map((x) => Number(x)), [0, 253_402_300_799_999, 946_684_799_999, 1_700_000_000_123]);
      assert.deepEqual(row!.t, text);
      assert.deepEqual((row!.b as (Uint8Array | null)[]).map((x) => (x ? Buffer.from(x) : null)), bytes);
      assert.deepEqual(row!.f, [true, false]);
      assert.equal(Number(row!.empty), 0);
    });

    it('an element type other than the one the parameter names is refused, not misread', async () => {
      const a = new BinaryArray('int4');
      a.int4(1);
      await assert.rejects(db.sql.query('select $1::int8[] as x', [a.finish()]));
    });
  });
}
