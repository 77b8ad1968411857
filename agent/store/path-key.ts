/**
 * Baseline keys: the path's bytes with every '/' replaced by a 0x00 byte (names never contain
 * either). In this encoding, byte order is the order of a depth-first walk that visits each
 * directory's entries sorted by name, so a scan can merge its walk with the baseline in one pass,
 * without holding the tree in memory.
 */
/** The path without trailing slashes ('/etc//' → '/etc'; '/' stays '/'): how a scan root is walked and keyed. */
export function withoutTrailingSlashes(path: Buffer): Buffer {
  let end = path.length;
  while (end > 1 && path[end - 1] === 0x2f) end--;
  return end === path.length ? path : path.subarray(0, end);
}

export function pathToKey(path: Buffer): Buffer {
  const key = Buffer.from(path);
  for (let i = 0; i < key.length; i++) if (key[i] === 0x2f) key[i] = 0;
  return key;
}

export function keyToPath(key: Buffer): Buffer {
  const path = Buffer.from(key);
  for (let i = 0; i < path.length; i++) if (path[i] === 0) path[i] = 0x2f;
  return path;
}

/**
 * The end (excluded) of the key range at and below a root key: the keys below a directory d are
 * exactly [d‖0x00, d‖0x01), and '/' (key 0x00) covers [0x00, 0x01).
 */
export function keysUnderEnd(rootKey: Buffer): Buffer {
  return rootKey.length === 1 && rootKey[0] === 0 ? Buffer.of(1) : Buffer.concat([rootKey, Buffer.of(1)]);
}

/** True when key is root's key or a key below it. */
export function keyIsUnder(key: Buffer, rootKey: Buffer): boolean {
  if (key.length < rootKey.length || key.compare(rootKey, 0, rootKey.length, 0, rootKey.length) !== 0) return false;
  if (key.length === rootKey.length) return true;
  // '/' alone has the key 0x00: everything is below it.
  return (rootKey.length === 1 && rootKey[0] === 0) || key[rootKey.length] === 0;
}

/**
 * Orders two paths, or a key and a path, as their keys would be ordered (pathToKey), without
 * building the keys: the first differing byte decides, '/' counting as 0x00; one that is a prefix
 * of the other comes first.
 */
export function comparePathKeys(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i] === 0x2f ? 0 : a[i]!;
    const y = b[i] === 0x2f ? 0 : b[i]!;
    if (x !== y) return x - y;
  }
  return a.length - b.length;
}
