import { createHash } from 'node:crypto';
import { AgentError } from '../errors.js';

/**
 * Baseline keys longer than LMDB takes. A key (path-key.ts) is as long as its path, and Linux
 * paths reach 4,095 bytes (PATH_MAX) and more when walked relative, but LMDB refuses keys over
 * MAX_KEY_BYTES: one such path made the whole transaction, so the scan of its root, fail. A key
 * that fits is stored as it is, in the baseline database; a longer one goes to the long baseline
 * database under a fixed-length key:
 *
 *   first LONG_PREFIX_BYTES bytes of the key ‖ SHA-256 of the whole key   (MAX_KEY_BYTES in all)
 *
 * and its value carries the whole key before the encoded state (packLong). Because the prefix
 * comes first, the long keys keep the order of their prefixes, so a key range of the baseline
 * (a root, a scan unit) is a key range of the long database too, and only the long keys that
 * share one prefix need sorting by their whole keys (key-ordered-range.ts reads both databases as
 * one sequence in walk order). The hash only tells apart keys that share a prefix; the whole key
 * in the value is what is compared, so not even a collision could confuse two paths.
 */

/** LMDB's largest key (lmdb-js is built with a 4 KiB page: 1,978 bytes). Fixed: it shapes stored keys. */
export const MAX_KEY_BYTES = 1978;
const HASH_BYTES = 32;
/** How much of a long key its stored key keeps before the hash. */
export const LONG_PREFIX_BYTES = MAX_KEY_BYTES - HASH_BYTES;

/** True when the key is too long for LMDB and is stored in the long database. */
export const isLongKey = (key: Buffer): boolean => key.length > MAX_KEY_BYTES;

/** The long database's key for a long key. */
export function longKey(key: Buffer): Buffer {
  return Buffer.concat([key.subarray(0, LONG_PREFIX_BYTES), createHash('sha256').update(key).digest()]);
}

/** A long entry's value: the whole key's length (4 bytes, LE), the whole key, the encoded state. */
export function packLong(key: Buffer, state: Buffer): Buffer {
  const b = Buffer.allocUnsafe(4 + key.length + state.length);
  b.writeUInt32LE(key.length, 0);
  key.copy(b, 4);
  state.copy(b, 4 + key.length);
  return b;
}

/** The whole key and the encoded state of a long entry's value (views of it). */
export function unpackLong(value: Buffer): { key: Buffer; value: Buffer } {
  const n = value.length >= 4 ? value.readUInt32LE(0) : -1;
  if (n <= MAX_KEY_BYTES || 4 + n > value.length) throw new AgentError('store_corrupt', `a long baseline entry of ${value.length} bytes does not hold a long key (length ${n})`);
  return { key: value.subarray(4, 4 + n), value: value.subarray(4 + n) };
}
