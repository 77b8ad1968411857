import { fstatSync } from 'node:fs';
import { getSystemErrorName } from 'node:util';
import { nativeAddon } from '../native/addon.js';
import { SLOT_CTIME, SLOT_DEV, SLOT_ERRNO, SLOT_GID, SLOT_INO, SLOT_MODE, SLOT_MTIME, SLOT_NLINK, SLOT_SIZE, SLOT_UID } from '../native/stat-slots.js';

/**
 * fstat of an open file into words[at .. at + STAT_SLOTS), in the layout of listing.ts (the
 * d_type word is left as it is). Throws an error with the errno's code (ENOENT, EIO…) like
 * fstatSync.
 */
export type StatFd = (fd: number, words: Uint32Array, at: number) => void;

/** Where the stat fields of a hashed file come from: the native addon, else fstatSync. */
export function createStatFd(env: NodeJS.ProcessEnv = process.env): StatFd {
  const addon = nativeAddon(env);
  if (!addon) return statFdWithNode;
  const { statFd } = addon;
  return (fd, words, at) => {
    const errno = statFd(fd, words, at);
    if (errno !== 0) throw errnoError(errno, 'fstat');
  };
}

function errnoError(errno: number, syscall: string): NodeJS.ErrnoException {
  const code = getSystemErrorName(-errno);
  return Object.assign(new Error(`${code}: ${syscall} failed`), { code, errno: -errno, syscall });
}

const low = (v: bigint) => Number(BigInt.asUintN(32, v));
const high = (v: bigint) => Number(BigInt.asUintN(32, v >> 32n));

function statFdWithNode(fd: number, words: Uint32Array, at: number): void {
  const st = fstatSync(fd, { bigint: true });
  words[at + SLOT_ERRNO] = 0;
  words[at + SLOT_MODE] = Number(st.mode);
  words[at + SLOT_UID] = Number(st.uid);
  words[at + SLOT_GID] = Number(st.gid);
  words[at + SLOT_NLINK] = Math.min(Number(st.nlink), 0xffffffff);
  for (const [slot, v] of [[SLOT_SIZE, st.size], [SLOT_MTIME, st.mtimeNs], [SLOT_CTIME, st.ctimeNs], [SLOT_INO, st.ino], [SLOT_DEV, st.dev]] as const) {
    words[at + slot] = low(v);
    words[at + slot + 1] = high(v);
  }
}
