/**
 * Many paths in one byte array plus their end offsets: posted to a worker thread by transfer (no
 * copy, no per-path string), read back there as views. Names are bytes, so no encoding is involved.
 */
export interface PathBatch {
  readonly bytes: Uint8Array;
  /** ends[i]: offset just past path i (path i starts at ends[i - 1], or 0). */
  readonly ends: Uint32Array;
}

export function packPaths(paths: readonly Buffer[]): PathBatch {
  let total = 0;
  for (const p of paths) total += p.length;
  const bytes = new Uint8Array(total);
  const ends = new Uint32Array(paths.length);
  let o = 0;
  paths.forEach((p, i) => {
    bytes.set(p, o);
    o += p.length;
    ends[i] = o;
  });
  return { bytes, ends };
}

export function pathCount(batch: PathBatch): number {
  return batch.ends.length;
}

/** Path i as a Buffer view of the batch (not a copy). */
export function pathAt(batch: PathBatch, i: number): Buffer {
  const start = i === 0 ? 0 : batch.ends[i - 1]!;
  return Buffer.from(batch.bytes.buffer, batch.bytes.byteOffset + start, batch.ends[i]! - start);
}

/** The arrays to list as transferred when posting the batch. */
export function transferablesOf(batch: PathBatch): ArrayBuffer[] {
  return [batch.bytes.buffer as ArrayBuffer, batch.ends.buffer as ArrayBuffer];
}
