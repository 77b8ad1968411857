import type { FileState } from '../../core/model.js';

/** A regular file's state for tests: size n, content digest of n bytes of n; parts overridable. */
export function sampleState(n: number, overrides: Partial<FileState> = {}): FileState {
  return {
    type: 'regular',
    size: n,
    mode: 0o100644,
    uid: 0,
    gid: 0,
    mtimeNs: 1_700_000_000_000_000_001n,
    ctimeNs: 2n,
    inode: 3n,
    nlink: 1,
    sha256: Buffer.alloc(32, n),
    symlinkTarget: null,
    error: null,
    ...overrides,
  };
}
