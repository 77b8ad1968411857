import { open as openLmdb, type Database, type RootDatabase } from 'lmdb';

/**
 * Address space reserved for the map up front (not memory: only pages read or written become
 * resident, and the file grows only as data is written). lmdb-js otherwise starts at 128 KiB and
 * doubles, keeping every earlier map for readers that may still use it, so a /usr baseline left
 * about twice the file's size resident in maps no one reads any more. A bigger store still grows.
 */
const MAP_BYTES = 2 ** 30;

/**
 * The agent's one LMDB environment. remapChunks off (lmdb-js's default on 64-bit without
 * encryption, said here because it matters): with it, lmdb-js unmaps chunks at the end of
 * transactions on any thread, and the idle release (agent/native/memory.c) relies on no map of
 * the open environment ever being unmapped.
 */
export const openEnv = (path: string): RootDatabase => openLmdb({ path, compression: false, mapSize: MAP_BYTES, remapChunks: false });

/** The baseline database: path key (path-key.ts) → encoded state (state-codec.ts). */
export const openBaselineDb = (env: RootDatabase): Database<Buffer, Buffer> => env.openDB({ name: 'baseline', keyEncoding: 'binary', encoding: 'binary' });

/** The baseline's entries whose keys are too long for LMDB (long-keys.ts): prefix ‖ hash → whole key and encoded state. */
export const openLongBaselineDb = (env: RootDatabase): Database<Buffer, Buffer> => env.openDB({ name: 'baseline-long', keyEncoding: 'binary', encoding: 'binary' });

/** Small records beside the baseline and the queue (sequence, queue size, policy, gaps...). */
export type MetaDb = Database<Buffer, string>;
export const openMetaDb = (env: RootDatabase): MetaDb => env.openDB({ name: 'meta', encoding: 'binary' });

export function readU64(meta: MetaDb, key: string, otherwise: number): number {
  const v = meta.get(key);
  return v ? Number(v.readBigUInt64BE()) : otherwise;
}

export function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

/** A JSON record, or null when absent or in an older encoding the agent no longer reads. */
export function readJson<T>(meta: MetaDb, key: string): T | null {
  const v = meta.get(key);
  if (!v) return null;
  try {
    return JSON.parse(v.toString('utf8')) as T;
  } catch {
    return null;
  }
}

export const writeJson = (meta: MetaDb, key: string, value: unknown): void => void meta.putSync(key, Buffer.from(JSON.stringify(value)));
