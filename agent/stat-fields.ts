import type { BigIntStats } from 'node:fs';
import type { FileState } from '../core/model.js';

/** The stat part of a file's state (what a stat-only re-check compares, plus the link count). */
export type StatFields = Pick<FileState, 'size' | 'mode' | 'uid' | 'gid' | 'mtimeNs' | 'ctimeNs' | 'inode' | 'nlink'>;

export function statFields(st: BigIntStats): StatFields {
  return {
    size: Number(st.size),
    mode: Number(st.mode),
    uid: Number(st.uid),
    gid: Number(st.gid),
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    inode: st.ino,
    nlink: Number(st.nlink),
  };
}
