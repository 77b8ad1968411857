import { readdir } from 'node:fs/promises';
import type { FileState } from '../proto/model.js';
import { readFileState } from './file-state.js';

const SLASH = Buffer.from('/');

export function joinPath(dir: Buffer, name: Buffer): Buffer {
  return dir.length === 1 && dir[0] === 0x2f ? Buffer.concat([dir, name]) : Buffer.concat([dir, SLASH, name]);
}

/**
 * Every path at and below root, depth-first, names as bytes. Symlinks are yielded, never followed,
 * so loops cannot make the walk endless. A directory that cannot be listed is yielded (its state
 * carries the error) and not entered.
 */
export async function* walk(root: Buffer, isExcluded: (path: Buffer) => boolean): AsyncGenerator<Buffer> {
  if (isExcluded(root)) return;
  yield root;
  const stack: Buffer[] = [root];
  while (stack.length) {
    const dir = stack.pop()!;
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true, encoding: 'buffer' });
    } catch {
      continue; // not a directory, vanished, or unreadable: its own state says which
    }
    for (const e of entries) {
      const p = joinPath(dir, e.name as unknown as Buffer);
      if (isExcluded(p)) continue;
      yield p;
      if (e.isDirectory()) stack.push(p);
    }
  }
}

/** True when the stat data that a re-check compares is unchanged (no need to read the content). */
export function sameStat(a: FileState, b: FileState): boolean {
  return (
    a.type === b.type &&
    a.size === b.size &&
    a.mtimeNs === b.mtimeNs &&
    a.ctimeNs === b.ctimeNs &&
    a.inode === b.inode &&
    a.mode === b.mode &&
    a.uid === b.uid &&
    a.gid === b.gid
  );
}

/**
 * Reads a path's state for a scan: stat first; when stat data equals the baseline's and no full
 * hash was asked for, the baseline's hash is kept and the content is not read.
 */
export async function scanState(path: Buffer, known: FileState | undefined, fullHash: boolean): Promise<FileState | null> {
  if (known && !fullHash && known.type === 'regular' && known.sha256 && !known.error) {
    const quick = await readFileState(path, { hash: false });
    if (quick && sameStat(quick, known)) return known;
  }
  return readFileState(path, { hash: true });
}
