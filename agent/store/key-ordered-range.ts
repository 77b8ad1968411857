import type { Database } from 'lmdb';
import { LONG_PREFIX_BYTES, MAX_KEY_BYTES, unpackLong } from './long-keys.js';

/** A baseline entry: its key (path-key.ts) and its encoded state (state-codec.ts). */
export interface KeyedEntry {
  readonly key: Buffer;
  readonly value: Buffer;
}

/**
 * The baseline's entries with start <= key < end, in key order (the walk's order), from both of
 * its databases: the keys LMDB takes, and the long ones (long-keys.ts) with their whole keys. What
 * the short database yields may be views valid until the next step (baseline-ranges.ts): the
 * caller copies what it keeps, as before. When no long key lies in the range (nearly always), the
 * short database's own iterator is returned, so the scan's merge pays nothing per entry for long keys.
 */
export function keyOrderedRange(short: Database<Buffer, Buffer>, long: Database<Buffer, Buffer>, start: Buffer, end: Buffer): Iterable<KeyedEntry> {
  // An empty long database (nearly every host) is seen without a cursor: a scan reads thousands of ranges.
  if (long.getCount() === 0) return shortRange(short, start, end);
  const longs = longRange(long, start, end)[Symbol.iterator]();
  const first = longs.next();
  const shorts = shortRange(short, start, end);
  return first.done ? shorts : merged(shorts, first, longs);
}

/** The short database's keys in [start, end); bounds longer than LMDB takes are cut for LMDB and applied here. */
function shortRange(db: Database<Buffer, Buffer>, start: Buffer, end: Buffer): Iterable<KeyedEntry> {
  if (start.length <= MAX_KEY_BYTES && end.length <= MAX_KEY_BYTES) return db.getRange({ start, end }) as Iterable<KeyedEntry>;
  return (function* () {
    // A cut start is at or before start, so only keys before start need leaving out.
    for (const e of db.getRange({ start: start.subarray(0, MAX_KEY_BYTES) }) as Iterable<KeyedEntry>) {
      if (Buffer.compare(e.key, end) >= 0) return;
      if (Buffer.compare(e.key, start) >= 0) yield e;
    }
  })();
}

/**
 * The long database's entries whose whole keys lie in [start, end), by whole key. Stored keys are
 * prefix ‖ hash, so the database is in prefix order: every whole key in the range has a prefix at
 * or after start's first LONG_PREFIX_BYTES bytes and at or before end's, and the entries of one
 * prefix are sorted here by whole key (copies: never views).
 */
function* longRange(db: Database<Buffer, Buffer>, start: Buffer, end: Buffer): Generator<KeyedEntry> {
  const lastPrefix = end.subarray(0, LONG_PREFIX_BYTES);
  function* inOrder(group: KeyedEntry[]) {
    group.sort((a, b) => Buffer.compare(a.key, b.key));
    for (const e of group) if (Buffer.compare(e.key, start) >= 0 && Buffer.compare(e.key, end) < 0) yield e;
  }
  let prefix: Buffer | null = null;
  let group: KeyedEntry[] = [];
  for (const { key, value } of db.getRange({ start: start.subarray(0, LONG_PREFIX_BYTES) }) as Iterable<KeyedEntry>) {
    const p = key.subarray(0, LONG_PREFIX_BYTES);
    if (Buffer.compare(p, lastPrefix) > 0) break;
    // Copied before anything is yielded: the caller's reads reuse lmdb-js's buffers.
    const whole = unpackLong(value);
    const entry = { key: Buffer.from(whole.key), value: Buffer.from(whole.value) };
    if (prefix === null || !p.equals(prefix)) {
      const done = group;
      group = [entry];
      prefix = Buffer.from(p);
      yield* inOrder(done);
    } else group.push(entry);
  }
  yield* inOrder(group);
}

/** Two key-ordered sequences as one (no key is in both: each key lives in one database). */
function* merged(shorts: Iterable<KeyedEntry>, first: IteratorResult<KeyedEntry>, longs: Iterator<KeyedEntry>): Generator<KeyedEntry> {
  let l = first;
  for (let s of shorts) {
    if (!l.done && Buffer.compare(l.value.key, s.key) < 0) {
      // Reading on in the long database may reuse the buffers s is a view of.
      s = { key: Buffer.from(s.key), value: Buffer.from(s.value) };
      while (!l.done && Buffer.compare(l.value.key, s.key) < 0) {
        yield l.value;
        l = longs.next();
      }
    }
    yield s;
  }
  for (; !l.done; l = longs.next()) yield l.value;
}
