/**
 * The stat fields of a listing's entries (agent/native/listing.c), STAT_SLOTS 32-bit words per
 * entry: the errno of its fstatat (0: the fields are set), mode, uid, gid, link count, then the
 * 64-bit values as two words each (low first): size, mtime and ctime in ns, inode, device; last
 * the entry's d_type from the directory.
 */
export const STAT_SLOTS = 16;
export const SLOT_ERRNO = 0;
export const SLOT_MODE = 1;
export const SLOT_UID = 2;
export const SLOT_GID = 3;
export const SLOT_NLINK = 4;
export const SLOT_SIZE = 5;
export const SLOT_MTIME = 7;
export const SLOT_CTIME = 9;
export const SLOT_INO = 11;
export const SLOT_DEV = 13;
export const SLOT_DTYPE = 15;
